#!/usr/bin/python3
# Makes the data-pipeline test fixtures with PIL and torchvision (run with Debian's
# /usr/bin/python3, which has both): small JPEGs that SkiaSharp cannot write (grayscale and CMYK),
# a PNG with alpha, and torchvision's outputs for eval and resized-crop transforms of small images.
import json, os
import numpy as np
from PIL import Image
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240607)

# Two-colour blocks: left half (200, 30, 40), right half (20, 120, 220); 24x16.
blocks = np.zeros((16, 24, 3), np.uint8)
blocks[:, :12] = (200, 30, 40)
blocks[:, 12:] = (20, 120, 220)
Image.fromarray(blocks).convert("CMYK").save(os.path.join(here, "cmyk.jpg"), quality=95)
Image.fromarray(blocks).convert("L").save(os.path.join(here, "gray.jpg"), quality=95)

# The same blocks as GIF (palette) and BMP, formats SkiaSharp reads but cannot write.
Image.fromarray(blocks).save(os.path.join(here, "blocks.gif"))
Image.fromarray(blocks).save(os.path.join(here, "blocks.bmp"))

# RGBA: left half opaque red-ish, right half fully transparent green (colour kept in the file).
rgba = np.zeros((8, 8, 4), np.uint8)
rgba[:, :4] = (180, 40, 60, 255)
rgba[:, 4:] = (10, 200, 30, 0)
Image.fromarray(rgba, "RGBA").save(os.path.join(here, "alpha.png"))

norm = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
def to_list(t):
    return [round(float(v), 6) for v in t.flatten()]

refs = {"eval": [], "crops": []}
# Smooth-ish random images (noise upsampled) so resampling differences stay small but real.
def make_image(name, w, h):
    small = rng.integers(0, 256, size=(max(2, h // 3), max(2, w // 3), 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.NEAREST)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-20, 21, size=(h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    img.save(os.path.join(here, name))
    return img

a = make_image("ref_23x17.png", 23, 17)
b = make_image("ref_97x61.png", 97, 61)
for img, name, size in [(a, "ref_23x17.png", 8), (b, "ref_97x61.png", 16), (b, "ref_97x61.png", 40)]:
    resize = round(size * 256 / 224)
    out = norm(T.ToTensor()(T.CenterCrop(size)(T.Resize(resize)(img))))
    refs["eval"].append({"image": name, "size": size, "output": to_list(out)})
for name, img, top, left, h, w, size, flip in [
        ("ref_97x61.png", b, 5, 9, 40, 53, 12, False),
        ("ref_97x61.png", b, 0, 0, 61, 97, 24, True),
        ("ref_23x17.png", a, 2, 3, 11, 14, 30, False),
        ("ref_23x17.png", a, 4, 1, 9, 9, 9, True)]:
    crop = F.resized_crop(img, top, left, h, w, [size, size])
    if flip:
        crop = F.hflip(crop)
    out = norm(T.ToTensor()(crop))
    refs["crops"].append({"image": name, "top": top, "left": left, "height": h, "width": w,
                          "size": size, "flip": flip, "output": to_list(out)})

with open(os.path.join(here, "torchvision_refs.json"), "w") as f:
    json.dump(refs, f)
print("torch", torch.__version__, "fixtures written to", here)
