"""ptft_keras: pre-training and fine-tuning for Keras 3.

Pretrain on plenty of unlabeled data (reconstruction, next-token or masked-token
prediction), move the pretrained weights into a downstream model explicitly and
verifiably, and fine-tune it with few labels.
"""

__version__ = "0.1.0"
