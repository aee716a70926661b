"""The four csm services and the ``csm`` command that runs them."""
