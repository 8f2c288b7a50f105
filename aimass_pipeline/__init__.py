"""AIMass: carries a company's AI models through their whole life."""
