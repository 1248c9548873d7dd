"""python -m vidrec.convert torchvision --arch ARCH --checkpoint FILE --out DIR

Converts a torchvision state dict (``.pth`` with torch installed, or ``.safetensors``) into a directory
that ``--config.init_from=DIR`` loads, and prints one JSON line: arch, class count, parameter and
BatchNorm-statistic counts, the output directory and the torchvision -> vidrec name of every tensor.

python -m vidrec.convert parity --arch ARCH [--shape N,T,H,W]   (needs torch + torchvision)

Builds a random-weight torchvision model (BatchNorm statistics randomised too), saves it to ``.pth``,
converts it and prints the largest absolute and relative logit difference as one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys

from vidrec.convert import ARCHS, convert_torchvision


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog="python -m vidrec.convert", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  tv = sub.add_parser("torchvision", help="convert a torchvision state dict")
  tv.add_argument("--arch", required=True, choices=ARCHS.names())
  tv.add_argument("--checkpoint", required=True, help="state dict: .pth (needs torch) or .safetensors")
  tv.add_argument("--out", required=True, help="output directory for --config.init_from")
  par = sub.add_parser("parity", help="logit parity against torchvision on a random-weight model")
  par.add_argument("--arch", required=True, choices=ARCHS.names())
  par.add_argument("--shape", default="", help="input N,T,H,W (video) or N,H,W (image); default 2,8,112,112 "
                                               "or 2,224,224")
  par.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  if args.command == "torchvision":
    summary = convert_torchvision(args.arch, args.checkpoint, args.out)
  else:
    from vidrec.convert import parity  # pylint: disable=g-import-not-at-top  (torch is optional)
    shape = tuple(int(s) for s in args.shape.split(",")) if args.shape else None
    summary = parity.parity(args.arch, shape, args.seed)
  print(json.dumps(summary))
  sys.stdout.flush()


if __name__ == "__main__":
  main()
