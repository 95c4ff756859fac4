"""The permission model: the role → permission table (`policy`) and its evaluation (`access`)."""
