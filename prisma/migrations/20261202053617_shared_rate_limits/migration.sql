-- Shared security rate limits (src/core/shared-rate-limit.ts).
--
-- UNLOGGED by hand (Prisma's schema cannot say it): every hit is one
-- autocommitted upsert, and without WAL its commit waits for no flush. What
-- an unlogged table loses, after a crash or on a promoted standby, is the
-- current minute's counts: the limits start again, which only forgives.
CREATE UNLOGGED TABLE "rate_limit" (
    "key" TEXT NOT NULL,
    "count" INTEGER NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "rate_limit_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE INDEX "rate_limit_expires_at_idx" ON "rate_limit"("expires_at");
