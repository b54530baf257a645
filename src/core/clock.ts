// Time is injected everywhere expiry, ordering or rate limits matter, so
// tests move a clock instead of sleeping.
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
