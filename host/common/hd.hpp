#pragma once
// OMICSD_HD marks functions compiled for both host and device. Shared recurrences (DP cells,
// likelihood terms) are written once with it so the CPU backend and the CUDA kernels run the
// same arithmetic; plain C++ translation units see an empty macro and never a CUDA header.
#if defined(__CUDACC__)
#define OMICSD_HD __host__ __device__ __forceinline__
#else
#define OMICSD_HD inline
#endif
