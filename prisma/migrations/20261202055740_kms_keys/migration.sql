-- CreateEnum
CREATE TYPE "kms_key_state" AS ENUM ('pre_active', 'active', 'deactivated', 'compromised');

-- CreateTable
CREATE TABLE "kms_key" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "spec" TEXT NOT NULL,
    "usage" TEXT NOT NULL,
    "state" "kms_key_state" NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "labels" JSONB NOT NULL DEFAULT '{}',
    "current_version" INTEGER NOT NULL,
    "min_decryption_version" INTEGER NOT NULL DEFAULT 1,
    "require_dpop" BOOLEAN NOT NULL DEFAULT false,
    "rotation_period_seconds" INTEGER NOT NULL DEFAULT 0,
    "next_rotation_at" TIMESTAMPTZ(3),
    "destroy_at" TIMESTAMPTZ(3),
    "destroyed_at" TIMESTAMPTZ(3),
    "compromised_at" TIMESTAMPTZ(3),
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "kms_key_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "kms_key_version" (
    "key_id" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "material" TEXT,
    "public_key" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "kms_key_version_pkey" PRIMARY KEY ("key_id","version")
);

-- CreateIndex
CREATE INDEX "kms_key_tenant_id_id_idx" ON "kms_key"("tenant_id", "id");

-- CreateIndex
CREATE INDEX "kms_key_destroy_at_idx" ON "kms_key"("destroy_at");

-- CreateIndex
CREATE INDEX "kms_key_next_rotation_at_idx" ON "kms_key"("next_rotation_at");

-- AddForeignKey
ALTER TABLE "kms_key_version" ADD CONSTRAINT "kms_key_version_key_id_fkey" FOREIGN KEY ("key_id") REFERENCES "kms_key"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
