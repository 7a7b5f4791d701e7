import Foundation
import Testing

@testable import Embedding

/// The fast `exp` and `erf` against the C library's, over the ranges the forward pass feeds them.
@Suite struct KernelTests {
    @Test func expMatchesTheCLibrary() {
        var worst: Float = 0
        for step in 0...20_000 {
            let x = -Float(step) * 0.004  // 0 … −80
            let expected = Foundation.exp(x)
            worst = max(worst, abs(Kernels.expNonPositive(x) - expected) / expected)
        }
        #expect(worst < 4e-7, "largest relative error \(worst)")
        #expect(Kernels.expNonPositive(-1000) < 1e-37)
    }

    @Test func erfMatchesTheCLibrary() {
        var worst: Float = 0
        for step in -10_000...10_000 {
            let x = Float(step) * 0.0006  // −6 … 6
            worst = max(worst, abs(Kernels.erf(x) - Foundation.erf(x)))
        }
        #expect(worst < 5e-7, "largest absolute error \(worst)")
    }

    @Test func softmaxRowsSumToOne() {
        var scores: [Float] = (0..<(5 * 13)).map { Float($0 % 7) * 3.5 - 10 }
        scores.withUnsafeMutableBufferPointer { Kernels.softmaxRows($0.baseAddress!, rows: 5, columns: 13) }
        for row in 0..<5 {
            let total = scores[(row * 13)..<(row * 13 + 13)].reduce(0, +)
            #expect(abs(total - 1) < 1e-6)
        }
    }

    @Test func layerNormCentresAndScales() {
        let input: [Float] = (0..<16).map { Float($0) * 2 + 100 }
        let gamma = [Float](repeating: 1, count: 16)
        let beta = [Float](repeating: 0, count: 16)
        var output = [Float](repeating: 0, count: 16)
        output.withUnsafeMutableBufferPointer { out in
            Kernels.addBiasLayerNorm(input, bias: nil, gamma: gamma, beta: beta, count: 16, epsilon: 1e-12, output: out.baseAddress!)
        }
        let mean = output.reduce(0, +) / 16
        let variance = output.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 16
        #expect(abs(mean) < 1e-5)
        #expect(abs(variance - 1) < 1e-4)
    }
}
