/// Delay before the next reconnect attempt: 0.1 s doubling up to 5 s, with jitter.
///
/// Jitter ("equal jitter": half the delay fixed, half random) spreads out the many processes that lose
/// their connection at the same moment when a broker restarts, so they do not hammer it in lockstep.
struct ReconnectBackoff: Sendable {
    var initial: Duration = .milliseconds(100)
    var maximum: Duration = .seconds(5)

    func delay(afterFailedAttempts attempts: Int) -> Duration {
        var ceiling = initial
        for _ in 0..<min(attempts, 16) where ceiling < maximum {
            ceiling *= 2
        }
        ceiling = min(ceiling, maximum)
        return ceiling / 2 + ceiling / 2 * Double.random(in: 0...1)
    }
}
