"""imgmirror."""
