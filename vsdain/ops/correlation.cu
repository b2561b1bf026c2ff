// PWC-Net cost-volume correlation (the reference's correlation_package), the kernel behind
// vsdain.ops.correlation.correlation_reference: kernel size 1, strides 1, padding equal to
// the maximum displacement d.
//
//   cost[b, (dy+d)*(2d+1) + (dx+d), y, x] = 1/C * sum_c first[b,c,y,x] * second[b,c,y+dy,x+dx]
//
// with second read as zero outside the image. Every kernel gathers (one thread per output
// element), so none needs atomics and all are deterministic.

extern "C" __global__ void correlation_forward(
    const scalar_t* __restrict__ first,   // (B, C, H, W)
    const scalar_t* __restrict__ second,  // (B, C, H, W)
    scalar_t* __restrict__ cost,          // (B, (2d+1)^2, H, W)
    const int batch, const int channels, const int height, const int width,
    const int max_displacement)
{
    const int side = 2 * max_displacement + 1;
    const long long pixels = (long long)height * width;
    const long long displacements = (long long)side * side;
    GRID_STRIDE_LOOP(index, batch * displacements * pixels) {
        const int x = (int)(index % width);
        const int y = (int)(index / width % height);
        const int displacement = (int)(index / pixels % displacements);
        const long long b = index / (pixels * displacements);
        const int shifted_x = x + displacement % side - max_displacement;
        const int shifted_y = y + displacement / side - max_displacement;

        accum_t sum = 0;
        if (shifted_x >= 0 && shifted_x < width && shifted_y >= 0 && shifted_y < height) {
            const scalar_t* reference = first + b * channels * pixels + (long long)y * width + x;
            const scalar_t* other =
                second + b * channels * pixels + (long long)shifted_y * width + shifted_x;
            for (int c = 0; c < channels; ++c) {
                sum += load(reference + c * pixels) * load(other + c * pixels);
            }
        }
        store(cost + index, sum / channels);
    }
}

// d cost / d first: first[b,c,y,x] meets second at (y+dy, x+dx) for every displacement.
extern "C" __global__ void correlation_backward_first(
    const scalar_t* __restrict__ grad_cost,  // (B, (2d+1)^2, H, W)
    const scalar_t* __restrict__ second,     // (B, C, H, W)
    accum_t* __restrict__ grad_first,        // (B, C, H, W), every element written
    const int batch, const int channels, const int height, const int width,
    const int max_displacement)
{
    const int side = 2 * max_displacement + 1;
    const long long pixels = (long long)height * width;
    const long long displacements = (long long)side * side;
    GRID_STRIDE_LOOP(index, batch * channels * pixels) {
        const int x = (int)(index % width);
        const int y = (int)(index / width % height);
        const long long b = index / (pixels * channels);
        const scalar_t* other = second + (index - (long long)y * width - x);  // (b, c, 0, 0)
        const scalar_t* grad = grad_cost + b * displacements * pixels + (long long)y * width + x;

        accum_t sum = 0;
        for (int displacement = 0; displacement < displacements; ++displacement) {
            const int shifted_x = x + displacement % side - max_displacement;
            const int shifted_y = y + displacement / side - max_displacement;
            if (shifted_x >= 0 && shifted_x < width && shifted_y >= 0 && shifted_y < height) {
                sum += load(grad + displacement * pixels) *
                       load(other + (long long)shifted_y * width + shifted_x);
            }
        }
        grad_first[index] = sum / channels;
    }
}

// d cost / d second: second[b,c,y,x] is met by first at (y-dy, x-dx) under displacement
// (dy, dx), so this is the same gather with the roles mirrored.
extern "C" __global__ void correlation_backward_second(
    const scalar_t* __restrict__ grad_cost,  // (B, (2d+1)^2, H, W)
    const scalar_t* __restrict__ first,      // (B, C, H, W)
    accum_t* __restrict__ grad_second,       // (B, C, H, W), every element written
    const int batch, const int channels, const int height, const int width,
    const int max_displacement)
{
    const int side = 2 * max_displacement + 1;
    const long long pixels = (long long)height * width;
    const long long displacements = (long long)side * side;
    GRID_STRIDE_LOOP(index, batch * channels * pixels) {
        const int x = (int)(index % width);
        const int y = (int)(index / width % height);
        const long long b = index / (pixels * channels);
        const scalar_t* reference = first + (index - (long long)y * width - x);  // (b, c, 0, 0)
        const scalar_t* grad = grad_cost + b * displacements * pixels;

        accum_t sum = 0;
        for (int displacement = 0; displacement < displacements; ++displacement) {
            const int source_x = x - (displacement % side - max_displacement);
            const int source_y = y - (displacement / side - max_displacement);
            if (source_x >= 0 && source_x < width && source_y >= 0 && source_y < height) {
                const long long source = (long long)source_y * width + source_x;
                sum += load(grad + displacement * pixels + source) * load(reference + source);
            }
        }
        grad_second[index] = sum / channels;
    }
}
