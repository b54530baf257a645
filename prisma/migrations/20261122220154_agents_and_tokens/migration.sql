-- CreateEnum
CREATE TYPE "key_use" AS ENUM ('signing', 'encryption');

-- CreateEnum
CREATE TYPE "signing_key_state" AS ENUM ('next', 'active', 'retiring', 'retired');

-- AlterTable
ALTER TABLE "principal" ADD COLUMN     "description" TEXT NOT NULL DEFAULT '',
ADD COLUMN     "metadata" JSONB NOT NULL DEFAULT '{}',
ADD COLUMN     "owner_id" TEXT;

-- AlterTable
ALTER TABLE "api_key" ADD COLUMN     "last_used_at" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "agent_key" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "principal_id" TEXT NOT NULL,
    "use" "key_use" NOT NULL,
    "alg" TEXT NOT NULL,
    "jwk" JSONB NOT NULL,
    "thumbprint" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "agent_key_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "signing_key" (
    "kid" TEXT NOT NULL,
    "alg" TEXT NOT NULL,
    "state" "signing_key_state" NOT NULL,
    "public_jwk" JSONB NOT NULL,
    "sealed_private" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "retire_at" TIMESTAMPTZ(3),

    CONSTRAINT "signing_key_pkey" PRIMARY KEY ("kid")
);

-- CreateTable
CREATE TABLE "issued_token" (
    "jti" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "principal_id" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "issued_token_pkey" PRIMARY KEY ("jti")
);

-- CreateTable
CREATE TABLE "revocation_event" (
    "id" BIGSERIAL NOT NULL,
    "kind" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "not_before" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "revocation_event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "replay_guard" (
    "key" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "replay_guard_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE INDEX "agent_key_tenant_id_idx" ON "agent_key"("tenant_id");

-- CreateIndex
CREATE UNIQUE INDEX "agent_key_principal_id_thumbprint_key" ON "agent_key"("principal_id", "thumbprint");

-- CreateIndex
CREATE INDEX "issued_token_principal_id_idx" ON "issued_token"("principal_id");

-- CreateIndex
CREATE INDEX "issued_token_expires_at_idx" ON "issued_token"("expires_at");

-- CreateIndex
CREATE INDEX "revocation_event_created_at_idx" ON "revocation_event"("created_at");

-- CreateIndex
CREATE INDEX "replay_guard_expires_at_idx" ON "replay_guard"("expires_at");

-- AddForeignKey
ALTER TABLE "agent_key" ADD CONSTRAINT "agent_key_principal_id_fkey" FOREIGN KEY ("principal_id") REFERENCES "principal"("id") ON DELETE CASCADE ON UPDATE CASCADE;
