#!/usr/bin/python3
"""Writes small_image_refs.json (and the images it uses): torchvision 0.14's output of He et al.'s
small-image augmentation, for CifarTransform in SmallImageAugmentation.cs. Each case fixes the
random choices (crop top/left in the 4-pixel-padded image, flip) and runs the same functional
ops the transforms run: CenterCrop(32) or Resize((32, 32)) to fit, then Pad(4, fill=0) + crop
(RandomCrop(32, padding=4)), hflip (RandomHorizontalFlip), ToTensor. The output is stored as
8-bit CHW bytes (ToTensor * 255), base64. Also the RandomCrop parameter draw itself, to check its
range. Run with Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14)."""
import base64, json, os
import numpy as np
from PIL import Image
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(1712)

def save(name, arr, mode):
    img = Image.fromarray(arr, mode)
    img.save(os.path.join(here, name))
    return img

# A Fashion-MNIST-like picture: black background, a brighter blob with texture, 8-bit gray.
yy, xx = np.mgrid[0:28, 0:28]
gray = np.clip(255 * np.exp(-((xx - 13) ** 2 + (yy - 15) ** 2) / 60.0) + rng.integers(0, 40, (28, 28)) * (xx > 6), 0, 255).astype(np.uint8)
images = {
    "small_gray_28x28.png": save("small_gray_28x28.png", gray, "L"),
    "small_rgb_27x30.png": save("small_rgb_27x30.png", rng.integers(0, 256, (30, 27, 3), dtype=np.uint8), "RGB"),
    "small_rgb_40x36.png": save("small_rgb_40x36.png", rng.integers(0, 256, (36, 40, 3), dtype=np.uint8), "RGB"),
}

cases = []
for name, fit, top, left, flip in [
        ("small_gray_28x28.png", "pad", 0, 8, False),
        ("small_gray_28x28.png", "pad", 5, 2, True),
        ("small_gray_28x28.png", "pad", 4, 4, False),      # the evaluation view
        ("small_rgb_27x30.png", "pad", 3, 6, True),        # odd padding: 2 left, 3 right; 1 top, 1 bottom
        ("small_rgb_40x36.png", "pad", 1, 7, False),       # larger than 32: centre crop
        ("small_rgb_40x36.png", "resize", 2, 2, True),     # resized with PIL's bilinear
        ("small_rgb_40x36.png", "resize", 8, 0, False)]:
    img = images[name].convert("RGB")
    fitted = F.center_crop(img, [32, 32]) if fit == "pad" else F.resize(img, [32, 32])
    out = F.crop(F.pad(fitted, 4, fill=0), top, left, 32, 32)
    if flip:
        out = F.hflip(out)
    t = (T.ToTensor()(out) * 255).round().to(torch.uint8).numpy()
    cases.append({"image": name, "fit": fit, "top": top, "left": left, "flip": flip,
                  "chw": base64.b64encode(t.tobytes()).decode("ascii")})

# RandomCrop's draw: top and left are each uniform on 0..8 (torch.randint(0, h - th + 1)).
torch.manual_seed(0)
padded = F.pad(images["small_gray_28x28.png"], 6)
draws = [T.RandomCrop.get_params(padded, (32, 32)) for _ in range(2000)]
tops = sorted(set(d[0] for d in draws)); lefts = sorted(set(d[1] for d in draws))
json.dump({"cases": cases, "random_crop_tops": tops, "random_crop_lefts": lefts},
          open(os.path.join(here, "small_image_refs.json"), "w"), indent=1)
print("wrote", len(cases), "cases; RandomCrop tops", tops, "lefts", lefts)
