"""What glassnet reads: data sets, image files and how they become model inputs.

- ``datasets/``: the bundled and downloadable data sets, image folders, the synthetic shapes, the IDX
  format and the decoded-image cache;
- ``images.py``: reading an image file safely (size limits, EXIF orientation, grey and ink);
- ``preprocessing.py``: the preprocessing record a model keeps, and ``image_to_input`` that follows it;
- ``imageset.py``: decoded images held as bytes and normalised batch by batch;
- ``augment.py``: seeded random shifts, flips, rotations and scaling of a batch.

Imports: foundations (errors, backend, validation, atomic).
"""
from . import datasets, preprocessing
from .augment import Augment
from .imageset import ImageSet
