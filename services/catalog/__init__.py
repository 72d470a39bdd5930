"""The platform/group catalog as general admins shape it."""
