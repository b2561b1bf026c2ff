// Runtime prelude for running the CUDA kernel sources on the CPU, in the tests only.
//
// It stands in for vsdain/ops/device.cuh and for what nvcc/NVRTC provide implicitly: the
// CUDA qualifiers become plain C++, the launch indices are globals, atomicAdd is a plain add,
// and host_launch() runs every (block, thread) of a one-dimensional grid in turn. The kernels
// use no shared memory and no barriers, so running the simulated threads one after another is
// a valid schedule of the GPU launch; it is the one schedule without atomic races, which makes
// the CPU results deterministic.

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct HostIndex {
    unsigned int x, y, z;
};

// The launch indices the kernels read. Globals are enough: simulated threads never overlap.
static HostIndex blockIdx, threadIdx, blockDim, gridDim;

inline float atomicAdd(float* address, float value)
{
    const float old = *address;
    *address = old + value;
    return old;
}

inline double atomicAdd(double* address, double value)
{
    const double old = *address;
    *address = old + value;
    return old;
}

// IEEE binary16 -> binary32; exact for every half value, including subnormals, inf and NaN.
inline float half_bits_to_float(unsigned short half)
{
    const unsigned int sign = (unsigned int)(half & 0x8000u) << 16;
    const unsigned int exponent = (half >> 10) & 0x1fu;
    const unsigned int mantissa = half & 0x3ffu;
    unsigned int bits;
    if (exponent == 0x1fu) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        // Rebias the exponent from 15 to 127.
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else {
        // Zero or subnormal: mantissa * 2**-24, exact in float.
        const float magnitude = (float)mantissa * 5.9604644775390625e-08f;
        std::memcpy(&bits, &magnitude, sizeof bits);
        bits |= sign;
    }
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

// IEEE binary32 -> binary16, round to nearest even (what the GPU's cvt.rn.f16.f32 and torch's
// .half() do); overflow gives infinity, NaN stays NaN.
inline unsigned short float_to_half_bits(float value)
{
    unsigned int bits;
    std::memcpy(&bits, &value, sizeof bits);
    const unsigned short sign = (unsigned short)((bits >> 16) & 0x8000u);
    const unsigned int magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) {
        return sign | 0x7e00u;
    }
    if (magnitude >= 0x47800000u) {  // >= 65536, or infinity
        return sign | 0x7c00u;
    }
    unsigned int mantissa, shift;
    if (magnitude >= 0x38800000u) {  // >= 2**-14: a normal half
        // Rebias the exponent from 127 to 15 and drop 13 mantissa bits; a rounding carry
        // runs into the exponent (and from the largest finite half into infinity) as it should.
        mantissa = magnitude - (112u << 23);
        shift = 13;
    } else if (magnitude > 0x33000000u) {  // > 2**-25: rounds to a subnormal or 2**-14
        const unsigned int exponent = magnitude >> 23;
        mantissa = (magnitude & 0x7fffffu) | 0x800000u;
        shift = 126 - exponent;  // units of 2**-24
    } else {
        return sign;  // 2**-25 itself is a tie and rounds to the even neighbour, zero
    }
    const unsigned int kept = mantissa >> shift;
    const unsigned int rest = mantissa & ((1u << shift) - 1u);
    const unsigned int halfway = 1u << (shift - 1);
    const unsigned int rounded = kept + (rest > halfway || (rest == halfway && (kept & 1u)));
    return sign | (unsigned short)rounded;
}

// Calls kernel with its arguments unpacked from the cuLaunchKernel-style array of pointers.
template <typename... Parameters, std::size_t... Indices>
void host_call(void (*kernel)(Parameters...), void** arguments, std::index_sequence<Indices...>)
{
    kernel(*static_cast<std::remove_cv_t<Parameters>*>(arguments[Indices])...);
}

template <typename... Parameters>
void host_launch(
    void (*kernel)(Parameters...), unsigned int blocks, unsigned int threads, void** arguments)
{
    gridDim = {blocks, 1, 1};
    blockDim = {threads, 1, 1};
    for (unsigned int block = 0; block < blocks; ++block) {
        for (unsigned int thread = 0; thread < threads; ++thread) {
            blockIdx = {block, 0, 0};
            threadIdx = {thread, 0, 0};
            host_call(kernel, arguments, std::index_sequence_for<Parameters...>{});
        }
    }
}
