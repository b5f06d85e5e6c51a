"""Many task adapters on one frozen base model: :class:`~adaptlab.adapters.registry.AdapterRegistry`."""
