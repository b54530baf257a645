-- AlterTable
ALTER TABLE "api_key" ADD COLUMN     "resource_server_id" TEXT;

-- CreateTable
CREATE TABLE "resource_server" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "identifier" TEXT NOT NULL,
    "display_name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "default_lifetime_seconds" INTEGER NOT NULL,
    "max_lifetime_seconds" INTEGER NOT NULL,
    "require_dpop" BOOLEAN NOT NULL,
    "principal_id" TEXT NOT NULL,
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "resource_server_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "resource_scope" (
    "resource_server_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "deprecated" BOOLEAN NOT NULL DEFAULT false,
    "principal_kinds" TEXT NOT NULL DEFAULT '',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "resource_scope_pkey" PRIMARY KEY ("resource_server_id","name")
);

-- CreateTable
CREATE TABLE "resource_grant" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "principal_id" TEXT NOT NULL,
    "resource_server_id" TEXT NOT NULL,
    "scope" TEXT NOT NULL,
    "granted_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "resource_grant_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "resource_server_identifier_key" ON "resource_server"("identifier");

-- CreateIndex
CREATE UNIQUE INDEX "resource_server_principal_id_key" ON "resource_server"("principal_id");

-- CreateIndex
CREATE INDEX "resource_server_tenant_id_id_idx" ON "resource_server"("tenant_id", "id");

-- CreateIndex
CREATE INDEX "resource_grant_resource_server_id_idx" ON "resource_grant"("resource_server_id");

-- CreateIndex
CREATE UNIQUE INDEX "resource_grant_principal_id_resource_server_id_scope_key" ON "resource_grant"("principal_id", "resource_server_id", "scope");

-- AddForeignKey
ALTER TABLE "resource_server" ADD CONSTRAINT "resource_server_principal_id_fkey" FOREIGN KEY ("principal_id") REFERENCES "principal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "resource_scope" ADD CONSTRAINT "resource_scope_resource_server_id_fkey" FOREIGN KEY ("resource_server_id") REFERENCES "resource_server"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "resource_grant" ADD CONSTRAINT "resource_grant_principal_id_fkey" FOREIGN KEY ("principal_id") REFERENCES "principal"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "resource_grant" ADD CONSTRAINT "resource_grant_resource_server_id_fkey" FOREIGN KEY ("resource_server_id") REFERENCES "resource_server"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
