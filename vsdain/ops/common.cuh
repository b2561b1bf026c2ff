// Definitions shared by every op kernel. Compiled after a runtime prelude (device.cuh on the
// GPU, the test harness's host_runtime.h on the CPU) and before the typedefs of scalar_t (the
// storage type of the op's tensors) and accum_t (the type arithmetic happens in).

// IEEE binary16 storage. Arithmetic never happens in half precision: every value is loaded
// into float, summed there, and rounded once when stored.
struct half_t {
    unsigned short bits;
};

__device__ __forceinline__ float load(const half_t* address) { return half_bits_to_float(address->bits); }
__device__ __forceinline__ float load(const float* address) { return *address; }
__device__ __forceinline__ double load(const double* address) { return *address; }

__device__ __forceinline__ void store(half_t* address, float value) { address->bits = float_to_half_bits(value); }
__device__ __forceinline__ void store(float* address, float value) { *address = value; }
__device__ __forceinline__ void store(double* address, double value) { *address = value; }

// Replicate-border addressing.
__device__ __forceinline__ int clamp_index(int index, int size)
{
    return index < 0 ? 0 : (index >= size ? size - 1 : index);
}

// Grid-stride loop over [0, total): correct for any launch size, so the launcher can cap the
// grid without the kernel knowing. 64-bit because B*C*H*W of DAIN's 196-channel context at
// 4K is within a few percent of 2**31.
#define GRID_STRIDE_LOOP(index, total)                                              \
    for (long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;        \
         index < (total); index += (long long)blockDim.x * gridDim.x)
