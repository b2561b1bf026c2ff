// Runtime prelude for the GPU build (NVRTC through CuPy, or nvcc in the tests).
//
// The kernels include no headers at all: NVRTC ships without the CUDA include tree, and where
// cuda_fp16.h lives differs between CUDA 12 and 13 installs and between pip and system
// toolkits. The only thing we would take from it is the float16 <-> float32 conversion, which
// is a single PTX instruction each way. tests/host_runtime.h provides the same
// names for the CPU build of the same kernel sources.

__device__ __forceinline__ float half_bits_to_float(unsigned short bits)
{
    float value;
    asm("cvt.f32.f16 %0, %1;" : "=f"(value) : "h"(bits));
    return value;
}

// Round to nearest even, as torch's .half() does.
__device__ __forceinline__ unsigned short float_to_half_bits(float value)
{
    unsigned short bits;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(value));
    return bits;
}
