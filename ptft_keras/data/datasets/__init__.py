"""Thin adapters from public datasets to the generic loaders: MNIST, SST-2, IMDb."""

from ptft_keras.data.datasets.imdb import imdb_corpus, load_imdb
from ptft_keras.data.datasets.mnist import load_mnist
from ptft_keras.data.datasets.sst2 import load_sst2, maximal_phrases

__all__ = ["imdb_corpus", "load_imdb", "load_mnist", "load_sst2", "maximal_phrases"]
