"""The fcn-stylize card's picture (docs/fcn-stylize-coffee.jpg): scikit-image's coffee, in no split, rendered by a
real daemon from the shipped weights. Top: the input, cold, spring; bottom: Local Xpro and Foreground Pop-Out
by the FCN, Pop-Out by sa-adjust; each cell 300 x 200.

    python -m training.fcn_stylize.picture [--out docs/fcn-stylize-coffee.jpg]
"""

import argparse
import tempfile

import cv2
import numpy as np

CELLS = (("cold", "fcn-stylize"), ("spring", "fcn-stylize"), ("local-xpro", "fcn-stylize"),
         ("foreground-pop-out", "fcn-stylize"), ("foreground-pop-out", "sa-adjust"))


def main(argv=None):
    from skimage import data

    from backend.spawn import spawn_daemon

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/fcn-stylize-coffee.jpg")
    args = parser.parse_args(argv)
    photo = data.coffee()
    cells = [photo]
    with tempfile.TemporaryDirectory() as work:
        daemon = spawn_daemon(work)
        try:
            client = daemon.client()
            cells += [client.adjust(photo, style=style, model=model).image for style, model in CELLS]
        finally:
            daemon.stop()
    cells = [cv2.resize(np.asarray(cell)[..., :3], (300, 200), interpolation=cv2.INTER_AREA) for cell in cells]
    grid = np.vstack([np.hstack(cells[:3]), np.hstack(cells[3:])])
    cv2.imwrite(args.out, np.ascontiguousarray(grid[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
