-- DropIndex
DROP INDEX "issued_token_principal_id_idx";
