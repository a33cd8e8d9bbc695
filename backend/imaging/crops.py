"""Crop boxes as a value: what ``crop`` predicts, ranked best first, in coordinates of the whole image.

Boxes are normalised (x, y of the top-left corner, width, height, all in 0..1 of the image), so a box
found on the 512 px view holds for the full-resolution layer; ``in_pixels`` rounds them for one size.
``fit_aspect`` makes the largest box of a given aspect ratio centred in each box (``--aspect 3:2``).
"""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class CropBox:
    x: float
    y: float
    width: float
    height: float
    score: float = 0.0

    def __post_init__(self):
        if not (0.0 <= self.x and 0.0 <= self.y and self.width > 0.0 and self.height > 0.0
                and self.x + self.width <= 1.0 + 1e-6 and self.y + self.height <= 1.0 + 1e-6):
            raise ValueError("a crop box lies inside the image (normalised x, y >= 0, x + width and y + height "
                             "<= 1), got x=%g y=%g width=%g height=%g" % (self.x, self.y, self.width, self.height))

    def in_pixels(self, image_width, image_height):
        """{"x", "y", "width", "height", "score"} in whole pixels of an image of that size, inside it."""
        x, y = round(self.x * image_width), round(self.y * image_height)
        width = max(1, min(image_width - x, round(self.width * image_width)))
        height = max(1, min(image_height - y, round(self.height * image_height)))
        return {"x": x, "y": y, "width": width, "height": height, "score": round(float(self.score), 4)}

    def fit_aspect(self, aspect, image_width, image_height):
        """The largest box of ``aspect`` = width / height (in pixels) centred in this one."""
        width_px, height_px = self.width * image_width, self.height * image_height
        if width_px / height_px > aspect:
            width_px = height_px * aspect
        else:
            height_px = width_px / aspect
        width, height = width_px / image_width, height_px / image_height
        return replace(self, x=self.x + (self.width - width) / 2, y=self.y + (self.height - height) / 2,
                       width=width, height=height)


class CropBoxes(list):
    """Boxes ranked by score, best first."""

    def __init__(self, boxes=()):
        super().__init__(sorted(boxes, key=lambda box: -box.score))

    def to_json(self, image_width, image_height):
        return {"crops": [box.in_pixels(image_width, image_height) for box in self]}
