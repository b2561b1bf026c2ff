// Depth-aware flow projection (paper eq. 1; the reference's DepthFlowProjection), the kernel behind
// vsdain.ops.projection.project_flow_reference. One projection is three launches:
//
//   project_flow_splat       every source adds -w*f and w to the 2x2 pixels around its landing
//                            point (equal weights, not bilinear)
//   project_flow_average     summed /= count where count > 0
//   project_flow_fill_holes  optional: holes take the mean of the nearest reached pixel in
//                            each of the four directions
//
// Buffers between the launches are accum_t, so float16 flow is averaged in float32.

// The four splat targets of a source landing at (landing_x, landing_y), in the reference's
// order: top-left, top-right, bottom-left, bottom-right. Right and bottom are clamped, so a
// landing point exactly on the last column or row names the same pixel twice and that pixel
// receives the source twice, as in the original kernel.
__device__ __forceinline__ void splat_targets(
    accum_t landing_x, accum_t landing_y, int height, int width, long long targets[4])
{
    // Landing points are known to be >= 0 here, so truncation is floor().
    const int left = (int)landing_x;
    const int top = (int)landing_y;
    const int right = left + 1 < width ? left + 1 : width - 1;
    const int bottom = top + 1 < height ? top + 1 : height - 1;
    targets[0] = (long long)top * width + left;
    targets[1] = (long long)top * width + right;
    targets[2] = (long long)bottom * width + left;
    targets[3] = (long long)bottom * width + right;
}

// One source pixel's flow and where it lands; inside says whether it is kept. NaN fails every
// comparison and infinity fails the upper bound, so broken flow is dropped.
struct Landing {
    accum_t flow_x, flow_y, x, y;
    bool inside;
};

__device__ __forceinline__ Landing source_landing(
    const scalar_t* flow, long long b, long long pixel, long long pixels, int height, int width)
{
    Landing landing;
    landing.flow_x = load(flow + 2 * b * pixels + pixel);
    landing.flow_y = load(flow + (2 * b + 1) * pixels + pixel);
    landing.x = (accum_t)(pixel % width) + landing.flow_x;
    landing.y = (accum_t)(pixel / width) + landing.flow_y;
    landing.inside =
        landing.x >= 0 && landing.x <= width - 1 && landing.y >= 0 && landing.y <= height - 1;
    return landing;
}

extern "C" __global__ void project_flow_splat(
    const scalar_t* __restrict__ flow,    // (B, 2, H, W), channel 0 = x, pixels, already * t
    const scalar_t* __restrict__ weight,  // (B, 1, H, W) inverse depth, or null: all weigh 1
    accum_t* __restrict__ summed,         // (B, 2, H, W), zeroed by the caller
    accum_t* __restrict__ count,          // (B, 1, H, W), zeroed by the caller
    const int batch, const int height, const int width)
{
    const long long pixels = (long long)height * width;
    GRID_STRIDE_LOOP(index, batch * pixels) {
        const long long b = index / pixels;
        const long long pixel = index % pixels;
        const Landing landing = source_landing(flow, b, pixel, pixels, height, width);
        if (!landing.inside) {
            continue;
        }
        const accum_t flow_x = landing.flow_x, flow_y = landing.flow_y;
        const accum_t source_weight = weight != nullptr ? (accum_t)load(weight + index) : 1;
        long long targets[4];
        splat_targets(landing.x, landing.y, height, width, targets);
        for (int k = 0; k < 4; ++k) {
            // Atomic because sources from anywhere may land on the same pixel; the order of
            // the float additions, and so the last bits, vary from run to run on the GPU.
            atomicAdd(summed + 2 * b * pixels + targets[k], -(source_weight * flow_x));
            atomicAdd(summed + (2 * b + 1) * pixels + targets[k], -(source_weight * flow_y));
            atomicAdd(count + b * pixels + targets[k], source_weight);
        }
    }
}

// In place: a pixel whose count is not > 0 keeps its sum (0 unless weights are negative).
extern "C" __global__ void project_flow_average(
    accum_t* __restrict__ summed,       // (B, 2, H, W): sums in, projected flow out
    const accum_t* __restrict__ count,  // (B, 1, H, W)
    const int batch, const int height, const int width)
{
    const long long pixels = (long long)height * width;
    GRID_STRIDE_LOOP(index, batch * pixels) {
        const accum_t total = count[index];
        if (total > 0) {
            const long long b = index / pixels;
            const long long pixel = index % pixels;
            summed[2 * b * pixels + pixel] /= total;
            summed[(2 * b + 1) * pixels + pixel] /= total;
        }
    }
}

// Index (y*W + x) of the first pixel with count != 0 met when walking from (x, y) in steps of
// (step_x, step_y), the pixel itself excluded; -1 if the walk leaves the image first.
__device__ __forceinline__ long long nearest_stop(
    const accum_t* count, int x, int y, int step_x, int step_y, int height, int width)
{
    for (x += step_x, y += step_y; x >= 0 && x < width && y >= 0 && y < height;
         x += step_x, y += step_y) {
        if (count[(long long)y * width + x] != 0) {
            return (long long)y * width + x;
        }
    }
    return -1;
}

// The neighbours a hole is filled from: the nearest stop to the left, right, top and bottom
// that has count > 0. Returns how many were written to used[]. *filled says whether the hole is
// filled at all: its own count is <= 0 and the counts of all the stops found (negative ones
// included, which stop a walk but are never averaged) sum to > 0.
__device__ __forceinline__ int fill_neighbours(
    const accum_t* count, long long pixel, int height, int width, long long used[4], bool* filled)
{
    const int x = (int)(pixel % width);
    const int y = (int)(pixel / width);
    const long long stops[4] = {
        nearest_stop(count, x, y, -1, 0, height, width),
        nearest_stop(count, x, y, 1, 0, height, width),
        nearest_stop(count, x, y, 0, -1, height, width),
        nearest_stop(count, x, y, 0, 1, height, width),
    };
    accum_t stop_count_sum = 0;
    int used_count = 0;
    for (int k = 0; k < 4; ++k) {
        if (stops[k] >= 0) {
            const accum_t stop_count = count[stops[k]];
            stop_count_sum += stop_count;
            if (stop_count > 0) {
                used[used_count++] = stops[k];
            }
        }
    }
    *filled = count[pixel] <= 0 && stop_count_sum > 0;
    return used_count;
}

// Reads only pixels with count > 0 and writes a separate output, so the fill never cascades
// and threads never race.
extern "C" __global__ void project_flow_fill_holes(
    const accum_t* __restrict__ projected,  // (B, 2, H, W), after project_flow_average
    const accum_t* __restrict__ count,      // (B, 1, H, W)
    accum_t* __restrict__ filled_flow,      // (B, 2, H, W), every element written
    const int batch, const int height, const int width)
{
    const long long pixels = (long long)height * width;
    GRID_STRIDE_LOOP(index, batch * pixels) {
        const long long b = index / pixels;
        const long long pixel = index % pixels;
        const accum_t* flow_x = projected + 2 * b * pixels;
        const accum_t* flow_y = flow_x + pixels;
        accum_t out_x = flow_x[pixel];
        accum_t out_y = flow_y[pixel];
        if (count[index] <= 0) {
            long long used[4];
            bool filled;
            const int used_count =
                fill_neighbours(count + b * pixels, pixel, height, width, used, &filled);
            if (filled) {
                accum_t sum_x = 0, sum_y = 0;
                for (int k = 0; k < used_count; ++k) {
                    sum_x += flow_x[used[k]];
                    sum_y += flow_y[used[k]];
                }
                out_x = sum_x / used_count;
                out_y = sum_y / used_count;
            }
        }
        filled_flow[2 * b * pixels + pixel] = out_x;
        filled_flow[(2 * b + 1) * pixels + pixel] = out_y;
    }
}

// Gradient through the fill: a filled hole hands its gradient, split equally, to the
// neighbours it averaged; every other pixel keeps its own.
extern "C" __global__ void project_flow_fill_holes_backward(
    const scalar_t* __restrict__ grad_filled,  // (B, 2, H, W)
    const accum_t* __restrict__ count,         // (B, 1, H, W)
    accum_t* __restrict__ grad_projected,      // (B, 2, H, W), zeroed by the caller
    const int batch, const int height, const int width)
{
    const long long pixels = (long long)height * width;
    GRID_STRIDE_LOOP(index, batch * pixels) {
        const long long b = index / pixels;
        const long long pixel = index % pixels;
        const accum_t grad_x = load(grad_filled + 2 * b * pixels + pixel);
        const accum_t grad_y = load(grad_filled + (2 * b + 1) * pixels + pixel);
        accum_t* target_x = grad_projected + 2 * b * pixels;
        accum_t* target_y = target_x + pixels;
        long long used[4];
        bool filled = false;
        int used_count = 0;
        if (count[index] <= 0) {
            used_count = fill_neighbours(count + b * pixels, pixel, height, width, used, &filled);
        }
        if (!filled) {
            // Atomic: a filled hole elsewhere may add to this pixel at the same time.
            atomicAdd(target_x + pixel, grad_x);
            atomicAdd(target_y + pixel, grad_y);
            continue;
        }
        for (int k = 0; k < used_count; ++k) {
            atomicAdd(target_x + used[k], grad_x / used_count);
            atomicAdd(target_y + used[k], grad_y / used_count);
        }
    }
}

// Gradient of the splat and average with respect to each source's flow and weight; one thread
// per source gathers from its four targets, so no atomics. With S the target's sum and N its
// count, a reached target (N > 0) outputs S/N and an unreached one S, hence per target
//   d out / d flow_c   = -w / N             (or -w)
//   d out_c / d weight = (-flow_c - out_c) / N   (or -flow_c)
// This is the exact derivative of -sum(w f) / sum(w); the original CUDA code's weight gradient
// was not.
extern "C" __global__ void project_flow_backward(
    const scalar_t* __restrict__ flow,            // (B, 2, H, W)
    const scalar_t* __restrict__ weight,          // (B, 1, H, W), or null: all weigh 1
    const accum_t* __restrict__ count,            // (B, 1, H, W)
    const accum_t* __restrict__ projected,        // (B, 2, H, W), after project_flow_average
    const accum_t* __restrict__ grad_projected,   // (B, 2, H, W)
    accum_t* __restrict__ grad_flow,              // (B, 2, H, W) or null; every element written
    accum_t* __restrict__ grad_weight,            // (B, 1, H, W) or null; every element written
    const int batch, const int height, const int width)
{
    const long long pixels = (long long)height * width;
    GRID_STRIDE_LOOP(index, batch * pixels) {
        const long long b = index / pixels;
        const long long pixel = index % pixels;
        const Landing landing = source_landing(flow, b, pixel, pixels, height, width);
        const accum_t flow_x = landing.flow_x, flow_y = landing.flow_y;
        accum_t d_flow_x = 0, d_flow_y = 0, d_weight = 0;
        if (landing.inside) {
            const accum_t source_weight = weight != nullptr ? (accum_t)load(weight + index) : 1;
            long long targets[4];
            splat_targets(landing.x, landing.y, height, width, targets);
            for (int k = 0; k < 4; ++k) {
                const accum_t total = count[b * pixels + targets[k]];
                const long long target_x = 2 * b * pixels + targets[k];
                const long long target_y = target_x + pixels;
                accum_t grad_x = grad_projected[target_x];
                accum_t grad_y = grad_projected[target_y];
                if (total > 0) {
                    grad_x /= total;
                    grad_y /= total;
                    d_weight -= grad_x * (flow_x + projected[target_x]) +
                                grad_y * (flow_y + projected[target_y]);
                } else {
                    d_weight -= grad_x * flow_x + grad_y * flow_y;
                }
                d_flow_x -= source_weight * grad_x;
                d_flow_y -= source_weight * grad_y;
            }
        }
        if (grad_flow != nullptr) {
            grad_flow[2 * b * pixels + pixel] = d_flow_x;
            grad_flow[(2 * b + 1) * pixels + pixel] = d_flow_y;
        }
        if (grad_weight != nullptr) {
            grad_weight[index] = d_weight;
        }
    }
}
