"""Pure planning: deciding what each source entry needs at the destination."""
