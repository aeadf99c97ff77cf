"""A user's own project: a ViT written the research group's way, not timm's."""
