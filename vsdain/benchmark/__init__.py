"""``python -m vsdain bench``: where DAIN's time and memory go.

One run measures, on the device present: time per output frame and peak memory through the
VapourSynth filter (``ours``), the same frames with the whole network run for every output
frame (``naive``), MVTools' FlowFPS on the same clip, the network's counted floating-point
operations against the device's measured dense-arithmetic peak, and (with a GPU) the CUDA
kernels against the PyTorch references. The parts:

- :mod:`.machine`: what the numbers were measured on;
- :mod:`.clips`: the source clip at each size (a real clip when present, else a synthetic one);
- :mod:`vsdain.memory` (shared with the filter): peak memory of one measured stretch;
- :mod:`.timing`: ours, naive and the per-part network timings;
- :mod:`.mvtools`: the FlowFPS reference;
- :mod:`.flops`: counted operations and the device's measured peak;
- :mod:`.kernels`: references against kernels;
- :mod:`.runner`: one run, from settings to results;
- :mod:`.report` and :mod:`.chart`: the markdown table and the PNG.
"""
