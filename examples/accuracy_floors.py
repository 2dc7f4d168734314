"""Train each dataset's default network and print its test figure and wall time.

    python examples/accuracy_floors.py mnist5k fashion_mnist shapes
"""
import sys
import time

import glassnet as gn

FLOORS = {"iris": 0.93, "digits": 0.98, "mnist5k": 0.95, "fashion_mnist": 0.90, "shapes": 0.95}


def main(names):
    for name in names:
        data = gn.datasets.load(name)
        s = dict(gn.presets.DEFAULTS[name])
        if name == "mnist5k":
            s["arch"] = "lenet"
        model = gn.presets.build(s["arch"], data.input_shape, len(data.class_names), seed=0,
                                 dtype=s.get("dtype", "float32"))
        started = time.perf_counter()
        model.fit(data.x_train, data.y_train, epochs=s["epochs"], batch_size=s["batch_size"],
                  optimizer=s["optimizer"], lr=s["lr"], seed=0, verbose=False, augment=s.get("augment"))
        seconds = time.perf_counter() - started
        accuracy = model.evaluate(data.x_test, data.y_test)[1]
        verdict = "ok" if accuracy >= FLOORS.get(name, 0) else "BELOW FLOOR"
        print(f"{name}: arch {s['arch']}, {s['epochs']} epochs, test accuracy {accuracy:.4f} "
              f"(floor {FLOORS.get(name, 0)}) {verdict}, {seconds:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:] or list(FLOORS))
