-- CreateEnum
CREATE TYPE "api_key_kind" AS ENUM ('api_key', 'user_token');

-- CreateEnum
CREATE TYPE "lease_state" AS ENUM ('active', 'exhausted', 'revoked', 'expired');

-- AlterTable
ALTER TABLE "api_key" ADD COLUMN     "kind" "api_key_kind" NOT NULL DEFAULT 'api_key',
ADD COLUMN     "scopes" TEXT;

-- CreateTable
CREATE TABLE "credential" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "app" TEXT NOT NULL,
    "account" TEXT NOT NULL,
    "display_name" TEXT NOT NULL,
    "owner_id" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "sealed" TEXT NOT NULL,
    "recipient_kids" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "credential_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "lease" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "credential_id" TEXT,
    "provider" TEXT NOT NULL,
    "app" TEXT NOT NULL,
    "account" TEXT NOT NULL,
    "holder_id" TEXT NOT NULL,
    "holder_jkt" TEXT NOT NULL,
    "created_by" TEXT NOT NULL,
    "max_uses" INTEGER NOT NULL,
    "remaining_uses" INTEGER NOT NULL,
    "state" "lease_state" NOT NULL DEFAULT 'active',
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "ended_at" TIMESTAMPTZ(3),
    "end_reason" TEXT,

    CONSTRAINT "lease_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "credential_tenant_id_provider_app_account_key" ON "credential"("tenant_id", "provider", "app", "account");

-- CreateIndex
CREATE INDEX "lease_tenant_id_id_idx" ON "lease"("tenant_id", "id");

-- CreateIndex
CREATE INDEX "lease_holder_id_state_idx" ON "lease"("holder_id", "state");

-- CreateIndex
CREATE INDEX "lease_credential_id_state_idx" ON "lease"("credential_id", "state");

-- AddForeignKey
ALTER TABLE "lease" ADD CONSTRAINT "lease_credential_id_fkey" FOREIGN KEY ("credential_id") REFERENCES "credential"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- Hand-written: uses never go below zero nor above the lease's maximum,
-- whatever a buggy or concurrent writer tries.
ALTER TABLE "lease" ADD CONSTRAINT "lease_remaining_uses_check" CHECK ("remaining_uses" >= 0 AND "remaining_uses" <= "max_uses");
