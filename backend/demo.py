"""`make demo`: a real daemon retouching real photographs, end to end through gRPC, results on disk.

Starts `semantic-enhance serve` as its own process on a free loopback port with a private token, then
plays a user: lists the models, runs every hosted model on photographs that scikit-image ships, and
writes inputs, results, adjustment maps, filter stacks and crops under --out. Models whose weights
are not installed say so in words, as the daemon tells any client.
"""

import argparse
import json
import os
import tempfile
import time


from .client import BackendError
from .imaging.files import write_image
from .spawn import spawn_daemon


def sample_photos():
    from skimage import data

    return {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}


def step(title, action):
    start = time.perf_counter()
    try:
        written = action()
        print("  %-48s %6.2f s  %s" % (title, time.perf_counter() - start, written or ""))
    except BackendError as error:
        print("  %-48s   skip    %s" % (title, error))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="out/demo")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        daemon = spawn_daemon(workdir, echo=True)
        client = daemon.client()
        try:
            hosted = {m.id: m for m in client.models().models}
            ready = {i for i, m in hosted.items() if m.installed}
            print("installed models: %s" % ", ".join(sorted(ready)))
            for i in sorted(set(hosted) - ready):
                print("not installed: %s (its weights are not in backend/weights)" % i)
            for name, photo in sample_photos().items():
                print(name)
                path = lambda suffix: os.path.join(args.out, "%s-%s" % (name, suffix))  # noqa: E731
                write_image(path("input.png"), photo)
                stack = {"filters": [{"name": "exposure", "values": [0.25]}, {"name": "contrast", "values": [0.35]},
                                     {"name": "saturation", "values": [0.5]}]}

                def filters():
                    write_image(path("filters.png"), client.filters(photo, stack).image)
                    return path("filters.png")
                step("filters (exposure, contrast, saturation)", filters)
                for model in sorted({"sa-adjust", "fcn-stylize"} & ready):
                    for style in hosted[model].styles:
                        def adjust(model=model, style=style):
                            result = client.adjust(photo, style=style, model=model, return_maps=True)
                            write_image(path("%s-%s.png" % (model, style)), result.image)
                            for role, pixels in result.images.items():
                                if role != "result":
                                    write_image(path("%s-%s-%s.png" % (model, style, role.replace("/", ""))), pixels)
                            return path("%s-%s.png" % (model, style))
                        step("adjust %s %s" % (model, style), adjust)

                def enhance():
                    write_image(path("enhance.png"), client.enhance(photo, "piecewise").image)
                    return path("enhance.png")
                if "enhancegan" in ready:
                    step("enhance piecewise", enhance)

                def progressive():
                    result = client.progressive(photo)
                    write_image(path("progressive.png"), result.image)
                    with open(path("progressive.json"), "w") as handle:
                        json.dump(result.summary_dict().get("filter_stack", {}), handle, indent=2)
                    return path("progressive.png")
                if "progressive" in ready:
                    step("progressive", progressive)

                def crop():
                    boxes = client.crop(photo).summary.crops
                    with open(path("crop.json"), "w") as handle:
                        json.dump([dict(x=b.x, y=b.y, width=b.width, height=b.height, score=b.score) for b in boxes],
                                  handle, indent=2)
                    return path("crop.json")
                if "enhancegan" in ready:
                    step("crop", crop)
        finally:
            daemon.stop(30)
    print("results in %s" % os.path.abspath(args.out))


if __name__ == "__main__":
    main()
