"""PNG figures for runs: accuracy bars, reconstruction grids, confusion matrices.

matplotlib with the Agg backend (no display needed); imported only when a plot is made.
"""

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def accuracy_bars(rows, path, title):
    """Bars of accuracy per (budget, init, method) row, grouped by budget."""
    plt = _pyplot()
    budgets = list(dict.fromkeys(r[0] for r in rows))
    series = list(dict.fromkeys((r[1], r[2]) for r in rows))
    acc = {r[:3]: r[3] for r in rows}
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(series)
    for i, (init, method) in enumerate(series):
        xs = [j + i * width for j, b in enumerate(budgets) if (b, init, method) in acc]
        ys = [acc[(b, init, method)] for b in budgets if (b, init, method) in acc]
        bars = ax.bar(xs, ys, width, label=f"{init}, {method}")
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(budgets))], [str(b) for b in budgets])
    ax.set(xlabel="labelled examples", ylabel="test accuracy", ylim=(0, 1.3))
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=2)  # above the bars (ylim 1.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _displayable(images, spec):
    """Model inputs -> [0, 1] pixels for `imshow` (undoes a standard scaling)."""
    images = np.asarray(images, "float32")
    if spec is not None and spec.scaling == "standard":
        images = images * np.asarray(spec.std, "float32") + np.asarray(spec.mean, "float32")
    images = np.clip(images, 0.0, 1.0)
    return images[..., 0] if images.shape[-1] == 1 else images


def reconstruction_grid(autoencoder, images, path):
    """Rows: input, noised input (if the model has noise), and their reconstructions. With
    an encoder `representation` layer (e.g. `BackgroundDistance`), also that map, which is
    what the autoencoder noises and reconstructs."""
    import keras

    from ptft_keras.models.images import prepare_images

    plt = _pyplot()
    spec = getattr(autoencoder, "image_spec", None)
    prepared = prepare_images(images, autoencoder.image_shape)
    target = keras.ops.convert_to_numpy(autoencoder.represent(prepared))
    grid = [("input", images)]
    if autoencoder.representation is not None:
        grid.append((autoencoder.representation.__class__.__name__, target))
    if autoencoder.noise_layer is not None:
        noisy = keras.ops.convert_to_numpy(autoencoder.noise_layer(target, training=True))
        grid.append(("noised input", noisy))
    grid.append(("reconstruction of input", autoencoder.predict(images, verbose=0)))
    if autoencoder.noise_layer is not None:
        denoised = keras.ops.convert_to_numpy(autoencoder.reconstruct(noisy))
        grid.append(("reconstruction of noised", denoised))
    fig, axes = plt.subplots(len(grid), len(images), figsize=(len(images), len(grid) + 0.5))
    axes = np.asarray(axes).reshape(len(grid), len(images))
    mapped = autoencoder.representation is not None  # rows after the input: the [0, 1] map
    for row, (title, batch) in enumerate(grid):
        shown = _displayable(batch, None if mapped and row else spec)
        for col in range(len(images)):
            axes[row, col].imshow(shown[col], cmap="gray", vmin=0, vmax=1)
            axes[row, col].axis("off")
        axes[row, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def confusion_matrix(labels, predictions, num_classes):
    """`(num_classes, num_classes)` counts: row = true class, column = predicted."""
    matrix = np.zeros((num_classes, num_classes), "int64")
    np.add.at(matrix, (np.asarray(labels, "int64"), np.asarray(predictions, "int64")), 1)
    return matrix


def confusion_matrix_plot(matrix, label_names, path, title="confusion matrix"):
    """A heat map of `matrix` with the counts written in the cells."""
    plt = _pyplot()
    n = len(label_names)
    size = min(12, 2 + 0.6 * n)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), label_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), label_names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(title, fontsize=10)
    if n <= 30:
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(n):
            for j in range(n):
                color = "white" if matrix[i, j] > threshold else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=color, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
