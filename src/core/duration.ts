// Durations on the wire are google.protobuf.Duration (AIP-142); the broker
// counts them in whole seconds. A fraction of a second rounds up: every
// bound the API sets is a whole number of seconds, so a duration within a
// bound stays within it.
import { type Duration, durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";

/** The duration in whole seconds, a fraction rounded up. */
export function secondsOf(duration: Duration): number {
  return Math.ceil(durationMs(duration) / 1000);
}

/** As secondsOf; undefined when the field is unset. */
export function optionalSeconds(duration: Duration | undefined): number | undefined {
  return duration === undefined ? undefined : secondsOf(duration);
}

/** A whole number of seconds as a Duration. */
export function durationOfSeconds(seconds: number): Duration {
  return durationFromMs(seconds * 1000);
}
