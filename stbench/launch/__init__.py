"""Launch and images: getting stbench's role images and experiments onto AWS."""
