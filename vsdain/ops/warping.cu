// Adaptive warping (paper eq. 3; the reference's FilterInterpolation), the kernel behind
// vsdain.ops.warping.adaptive_warp_reference. Output pixel p reads the image around
// q = p + flow(p) through a 4x4 window; tap (j, i) is weighted by kernel[4j+i](p) times the
// bilinear weights a_i * b_j, where a_i = 1-alpha for the left two columns and alpha for the
// right two (b_j likewise with beta for rows). Taps outside the image replicate the border.
// Where q is invalid the output copies the image at p.
//
// The output is a window of out_height x out_width pixels whose top-left corner sits at
// (top, left) in the image (the whole image when they are 0 and its size): p is in image
// coordinates, so a window equals the same window of the whole-image warp exactly. flow,
// kernel and the output are window-sized; the image is whole.
//
// flow is accum_t (float32 even for float16 images): a float16 x coordinate cannot hold the
// fractional part at video widths.

#define WINDOW 4  // taps per axis; the kernel network predicts WINDOW*WINDOW = 16 channels

// Everything about one output pixel that does not depend on the channel.
struct WarpGeometry {
    bool valid;
    int taps[WINDOW * WINDOW];  // y*W + x of each tap, clamped to the image (H*W < 2**31)
    accum_t alpha, beta;
};

__device__ __forceinline__ WarpGeometry warp_geometry(
    accum_t flow_x, accum_t flow_y, int x, int y, int height, int width)
{
    WarpGeometry geometry;
    geometry.alpha = 0;
    geometry.beta = 0;
    const accum_t sample_x = (accum_t)x + flow_x;
    const accum_t sample_y = (accum_t)y + flow_y;
    // |flow| < size/2 is written as two comparisons so that NaN fails it, like every other
    // test here; infinite flow fails too.
    const accum_t half_width = (accum_t)width / 2;
    const accum_t half_height = (accum_t)height / 2;
    geometry.valid = sample_x >= 0 && sample_x <= width - 1 && sample_y >= 0 &&
                     sample_y <= height - 1 && flow_x > -half_width && flow_x < half_width &&
                     flow_y > -half_height && flow_y < half_height;
    if (!geometry.valid) {
        return geometry;
    }
    // Valid sample points are >= 0, so truncation is floor().
    const int x0 = (int)sample_x;
    const int y0 = (int)sample_y;
    geometry.alpha = sample_x - x0;
    geometry.beta = sample_y - y0;
    for (int j = 0; j < WINDOW; ++j) {
        const int row = clamp_index(y0 - 1 + j, height) * width;
        for (int i = 0; i < WINDOW; ++i) {
            geometry.taps[j * WINDOW + i] = row + clamp_index(x0 - 1 + i, width);
        }
    }
    return geometry;
}

// a_i for column offset i (or b_j for row offset j, given beta).
__device__ __forceinline__ accum_t bilinear_weight(int offset, accum_t fraction)
{
    return offset < WINDOW / 2 ? 1 - fraction : fraction;
}

// One output pixel of the window: its item, its index in the window and in the image.
struct WindowPixel {
    long long b, out_pixel, pixel;
    int x, y;
};

__device__ __forceinline__ WindowPixel window_pixel(
    long long index, int out_height, int out_width, int top, int left, int width)
{
    WindowPixel p;
    const long long out_pixels = (long long)out_height * out_width;
    p.b = index / out_pixels;
    p.out_pixel = index % out_pixels;
    p.x = left + (int)(p.out_pixel % out_width);
    p.y = top + (int)(p.out_pixel / out_width);
    p.pixel = (long long)p.y * width + p.x;
    return p;
}

// The geometry of window pixel p from its flow (window-sized, channel 0 = x).
__device__ __forceinline__ WarpGeometry pixel_geometry(
    const accum_t* flow, const WindowPixel& p, long long out_pixels, int height, int width)
{
    return warp_geometry(flow[2 * p.b * out_pixels + p.out_pixel],
                         flow[(2 * p.b + 1) * out_pixels + p.out_pixel], p.x, p.y, height, width);
}

extern "C" __global__ void adaptive_warp_forward(
    const scalar_t* __restrict__ image,   // (B, C, H, W)
    const accum_t* __restrict__ flow,     // (B, 2, h, w), pixels, channel 0 = x
    const scalar_t* __restrict__ kernel,  // (B, 16, h, w)
    scalar_t* __restrict__ warped,        // (B, C, h, w)
    const int batch, const int channels, const int height, const int width,
    const int out_height, const int out_width, const int top, const int left)
{
    const long long pixels = (long long)height * width;
    const long long out_pixels = (long long)out_height * out_width;
    GRID_STRIDE_LOOP(index, batch * out_pixels) {
        const WindowPixel p = window_pixel(index, out_height, out_width, top, left, width);
        const WarpGeometry geometry = pixel_geometry(flow, p, out_pixels, height, width);
        const scalar_t* image_plane = image + p.b * channels * pixels;
        scalar_t* warped_plane = warped + p.b * channels * out_pixels;
        if (!geometry.valid) {
            for (int c = 0; c < channels; ++c) {
                warped_plane[c * out_pixels + p.out_pixel] = image_plane[c * pixels + p.pixel];
            }
            continue;
        }
        accum_t tap_weights[WINDOW * WINDOW];
        for (int k = 0; k < WINDOW * WINDOW; ++k) {
            tap_weights[k] =
                (accum_t)load(kernel + (p.b * WINDOW * WINDOW + k) * out_pixels + p.out_pixel) *
                bilinear_weight(k % WINDOW, geometry.alpha) *
                bilinear_weight(k / WINDOW, geometry.beta);
        }
        for (int c = 0; c < channels; ++c) {
            const scalar_t* plane = image_plane + c * pixels;
            accum_t sum = 0;
            for (int k = 0; k < WINDOW * WINDOW; ++k) {
                sum += tap_weights[k] * load(plane + geometry.taps[k]);
            }
            store(warped_plane + c * out_pixels + p.out_pixel, sum);
        }
    }
}

// One thread per output pixel. The kernel and flow gradients are gathered; the image gradient
// is scattered to the taps with atomics (neighbouring pixels share taps). The flow gradient
// acts through alpha and beta only: floor() and the validity test are piecewise constant.
// An invalid pixel was a copy, so it passes its gradient to the image at p unchanged and none
// to flow or kernel.
extern "C" __global__ void adaptive_warp_backward(
    const scalar_t* __restrict__ image,        // (B, C, H, W)
    const accum_t* __restrict__ flow,          // (B, 2, h, w)
    const scalar_t* __restrict__ kernel,       // (B, 16, h, w)
    const scalar_t* __restrict__ grad_warped,  // (B, C, h, w)
    accum_t* __restrict__ grad_image,          // (B, C, H, W) or null; zeroed by the caller
    accum_t* __restrict__ grad_flow,           // (B, 2, h, w) or null; every element written
    accum_t* __restrict__ grad_kernel,         // (B, 16, h, w) or null; every element written
    const int batch, const int channels, const int height, const int width,
    const int out_height, const int out_width, const int top, const int left)
{
    const long long pixels = (long long)height * width;
    const long long out_pixels = (long long)out_height * out_width;
    GRID_STRIDE_LOOP(index, batch * out_pixels) {
        const WindowPixel p = window_pixel(index, out_height, out_width, top, left, width);
        const long long b = p.b;
        const WarpGeometry geometry = pixel_geometry(flow, p, out_pixels, height, width);
        const scalar_t* image_plane = image + b * channels * pixels;
        const scalar_t* grad_plane = grad_warped + b * channels * out_pixels;

        // correlation[k] = sum_c grad[c] * image[c, tap k]: the kernel and flow gradients are
        // both linear in it, so the channel loop only has to build these 16 sums.
        accum_t correlation[WINDOW * WINDOW];
        accum_t kernel_values[WINDOW * WINDOW];
        for (int k = 0; k < WINDOW * WINDOW; ++k) {
            correlation[k] = 0;
            kernel_values[k] =
                geometry.valid ? load(kernel + (b * WINDOW * WINDOW + k) * out_pixels + p.out_pixel)
                           : 0;
        }
        for (int c = 0; c < channels; ++c) {
            const accum_t grad = load(grad_plane + c * out_pixels + p.out_pixel);
            accum_t* grad_image_plane =
                grad_image != nullptr ? grad_image + (b * channels + c) * pixels : nullptr;
            if (!geometry.valid) {
                if (grad_image_plane != nullptr) {
                    atomicAdd(grad_image_plane + p.pixel, grad);
                }
                continue;
            }
            const scalar_t* plane = image_plane + c * pixels;
            for (int k = 0; k < WINDOW * WINDOW; ++k) {
                correlation[k] += grad * load(plane + geometry.taps[k]);
                if (grad_image_plane != nullptr) {
                    const accum_t tap_weight = kernel_values[k] *
                                               bilinear_weight(k % WINDOW, geometry.alpha) *
                                               bilinear_weight(k / WINDOW, geometry.beta);
                    atomicAdd(grad_image_plane + geometry.taps[k], grad * tap_weight);
                }
            }
        }

        accum_t d_alpha = 0, d_beta = 0;
        for (int k = 0; k < WINDOW * WINDOW; ++k) {
            const int i = k % WINDOW, j = k / WINDOW;
            const accum_t column_weight = bilinear_weight(i, geometry.alpha);
            const accum_t row_weight = bilinear_weight(j, geometry.beta);
            if (grad_kernel != nullptr) {
                grad_kernel[(b * WINDOW * WINDOW + k) * out_pixels + p.out_pixel] =
                    geometry.valid ? correlation[k] * column_weight * row_weight : 0;
            }
            if (geometry.valid) {
                // d a_i / d alpha is -1 for the left columns and +1 for the right ones.
                const accum_t weighted = kernel_values[k] * correlation[k];
                d_alpha += (i < WINDOW / 2 ? -weighted : weighted) * row_weight;
                d_beta += (j < WINDOW / 2 ? -weighted : weighted) * column_weight;
            }
        }
        if (grad_flow != nullptr) {
            grad_flow[2 * b * out_pixels + p.out_pixel] = d_alpha;
            grad_flow[(2 * b + 1) * out_pixels + p.out_pixel] = d_beta;
        }
    }
}
