"""Customer 360: profiles, contacts, purchases, interactions, interests and consent."""
