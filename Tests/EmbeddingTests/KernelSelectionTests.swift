import Foundation
import Testing

@testable import Embedding

/// OpenBLAS's kernel choice (`KernelSelection`): which kernel a processor's flags call for, and that the
/// one in use matches this machine's processor.
@Suite struct KernelSelectionTests {
    @Test func avx512ProcessorsGetTheAVX512Kernels() {
        let avx512: Set<Substring> = ["avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        #expect(KernelSelection.preferredKernel(flags: avx512) == "SkylakeX")
        #expect(KernelSelection.preferredKernel(flags: avx512.union(["avx512_bf16"])) == "Cooperlake")
        // Without every subset the kernels use (Xeon Phi has avx512f and cd but not bw/dq/vl), or with
        // AVX2 only, OpenBLAS's own choice stays.
        #expect(KernelSelection.preferredKernel(flags: ["avx2", "fma", "avx512f", "avx512cd", "avx512er", "avx512pf"]) == nil)
        #expect(KernelSelection.preferredKernel(flags: ["avx2", "fma"]) == nil)
        #expect(KernelSelection.preferredKernel(flags: []) == nil)
    }

    @Test func theKernelInUseFitsThisProcessor() {
        let kernel = SentenceEmbedder.blasKernel
        let flags = KernelSelection.cpuFlags()
        #expect(!flags.isEmpty, "/proc/cpuinfo lists no flags")
        let setting = ProcessInfo.processInfo.environment["INTELLIDOCS_BLAS_KERNEL"]?.lowercased() ?? "auto"
        if ["skylakex", "cooperlake", "sapphirerapids"].contains(kernel.lowercased()) {
            #expect(KernelSelection.preferredKernel(flags: flags) != nil, "AVX-512 kernel \(kernel) on a processor without AVX-512")
        } else if setting == "auto", let preferred = KernelSelection.preferredKernel(flags: flags),
            ["haswell", "zen"].contains(kernel.lowercased())
        {
            Issue.record("this processor runs \(preferred)'s AVX-512 kernels, but OpenBLAS still uses \(kernel)")
        }
    }
}
