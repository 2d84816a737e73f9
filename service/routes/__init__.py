"""One router per audience: storefront (users, items, cart), marketers (bundles), operators (ops)."""
