// The default deadline of unary calls without one, on an injected clock.
import { Code, ConnectError, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Deadlines } from "../../src/transport/pipeline.js";

const unary = (headers: Record<string, string> = {}) =>
  ({ stream: false, header: new Headers(headers) }) as unknown as UnaryRequest;
const answer = { stream: false } as unknown as UnaryResponse;

describe("Deadlines", () => {
  it("refuses a call still running past the default deadline, at the first sweep after it", async () => {
    let now = 0;
    const deadlines = new Deadlines(1_000, () => now);
    const never = deadlines.interceptor(() => new Promise(() => {}))(unary());
    now = 999;
    deadlines.sweep();
    expect(deadlines.inFlight).toBe(1);
    now = 1_001;
    deadlines.sweep();
    const error = await never.catch((e: unknown) => ConnectError.from(e));
    expect(error).toMatchObject({ code: Code.DeadlineExceeded, rawMessage: "deadline of 1000 ms exceeded" });
    expect(deadlines.inFlight).toBe(0);
  });

  it("lets a call that finishes in time through and forgets it", async () => {
    let now = 0;
    const deadlines = new Deadlines(1_000, () => now);
    const done = deadlines.interceptor(async () => answer)(unary());
    await expect(done).resolves.toBe(answer);
    now = 5_000;
    deadlines.sweep();
    expect(deadlines.inFlight).toBe(0);
  });

  it("passes a failure through unchanged", async () => {
    const deadlines = new Deadlines(1_000, () => 0);
    const failing = deadlines.interceptor(async () => {
      throw new ConnectError("no", Code.NotFound);
    })(unary());
    await expect(failing).rejects.toMatchObject({ code: Code.NotFound });
    expect(deadlines.inFlight).toBe(0);
  });

  it.each(["connect-timeout-ms", "grpc-timeout"])(
    "leaves a call that names its own deadline (%s) alone",
    async (header) => {
      const deadlines = new Deadlines(1_000, () => 0);
      const call = deadlines.interceptor(() => new Promise(() => {}))(unary({ [header]: "100" }));
      expect(deadlines.inFlight).toBe(0);
      expect(call).toBeInstanceOf(Promise);
    },
  );
});
