-- CreateTable
CREATE TABLE "role" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "role_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "role_scope" (
    "role_id" TEXT NOT NULL,
    "resource_server_id" TEXT NOT NULL DEFAULT '',
    "scope" TEXT NOT NULL,

    CONSTRAINT "role_scope_pkey" PRIMARY KEY ("role_id","resource_server_id","scope")
);

-- CreateTable
CREATE TABLE "role_assignment" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "role_id" TEXT NOT NULL,
    "principal_id" TEXT NOT NULL,
    "assigned_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "role_assignment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "role_assignment_grant" (
    "assignment_id" TEXT NOT NULL,
    "grant_id" TEXT NOT NULL,
    "resource_server_id" TEXT NOT NULL DEFAULT '',
    "scope" TEXT NOT NULL,

    CONSTRAINT "role_assignment_grant_pkey" PRIMARY KEY ("assignment_id","grant_id")
);

-- CreateIndex
CREATE INDEX "role_tenant_id_id_idx" ON "role"("tenant_id", "id");

-- CreateIndex
CREATE UNIQUE INDEX "role_tenant_id_name_key" ON "role"("tenant_id", "name");

-- CreateIndex
CREATE INDEX "role_assignment_tenant_id_role_id_idx" ON "role_assignment"("tenant_id", "role_id");

-- CreateIndex
CREATE UNIQUE INDEX "role_assignment_principal_id_role_id_key" ON "role_assignment"("principal_id", "role_id");

-- CreateIndex
CREATE INDEX "role_assignment_grant_grant_id_idx" ON "role_assignment_grant"("grant_id");

-- AddForeignKey
ALTER TABLE "role_scope" ADD CONSTRAINT "role_scope_role_id_fkey" FOREIGN KEY ("role_id") REFERENCES "role"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "role_assignment" ADD CONSTRAINT "role_assignment_principal_id_fkey" FOREIGN KEY ("principal_id") REFERENCES "principal"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "role_assignment_grant" ADD CONSTRAINT "role_assignment_grant_assignment_id_fkey" FOREIGN KEY ("assignment_id") REFERENCES "role_assignment"("id") ON DELETE CASCADE ON UPDATE CASCADE;
