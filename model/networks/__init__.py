"""Networks: the backbones (ResNet-50, VGG-16, EfficientNetB0, EfficientNet-Lite) under one head, and the layers the artifact needs."""
