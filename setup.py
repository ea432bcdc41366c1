"""kpext: keypoint heads, data and tools for Detectron2.

torch, torchvision and detectron2 are not listed: like Detectron2's own
projects, kpext leaves their builds to the user (see README: `make setup`
installs a working set on a CPU machine; on a GPU use your CUDA builds).
Requirements are ranges, never pins: installing kpext into an existing
Detectron2 environment must not downgrade it. The exact versions the tests
last passed with are in constraints.txt, which only `make setup` applies.
"""

from setuptools import find_packages, setup

setup(
    name="kpext",
    version="0.1.0",
    description="Keypoint detection heads (Mask R-CNN, Gaussian, stacked hourglass) for Detectron2",
    long_description=open("README.md", encoding="utf-8").read()
    if __import__("os").path.exists("README.md")
    else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["kpext", "kpext.*"]),
    python_requires=">=3.9",
    install_requires=[
        "numpy",
        "opencv-python-headless",
        "pycocotools>=2.0.2",
        "fvcore>=0.1.5",
        "iopath>=0.1.7",
        "tqdm",
        "Pillow",
        "matplotlib",
        "scipy",
    ],
    # ONNX export and onnxruntime inference (kpext.export imports them when used);
    # tracking: ByteTrack from Roboflow's trackers (--tracker bytetrack). trackers 2.2 and later
    # require opencv-python, which shares its cv2/ folder with opencv-python-headless and breaks
    # `import cv2`; 2.1 needs supervision, which stopped requiring an OpenCV package in 0.31.
    extras_require={
        "test": ["pytest"],
        "export": ["onnx", "onnxruntime"],
        "tracking": ["trackers>=2.1,<2.2", "supervision>=0.31"],
    },
)
