-- AlterTable
ALTER TABLE "lease" ADD COLUMN     "idempotency_key" TEXT;

-- CreateIndex
CREATE UNIQUE INDEX "lease_created_by_idempotency_key_key" ON "lease"("created_by", "idempotency_key");
