"""Folder jobs: many images predicted with worker-process decoding, same-size batches, resume, and torchrun sharding.

* :mod:`.inputs`: which images (a folder, a glob, a list file) and where their outputs go;
* :mod:`.loading`: decoding in DataLoader workers, grouping into same-size batches;
* :mod:`.runner`: prediction, atomic writes, resume and the summary.

The command is ``python -m segscale predict FOLDER --out DIR`` (:mod:`segscale.commands.predict_folder`).
Nothing heavy is imported here, so ``segscale predict --help`` stays quick.
"""
