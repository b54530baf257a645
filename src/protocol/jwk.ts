// JWK checks shared by everything that accepts a public key from a client
// (DPoP proof headers, agent key registration).

/** Members that only a private (or symmetric) JWK has (RFC 7518 §6). */
const privateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/** True when `jwk` carries private or secret key material and must be refused. */
export function hasPrivateKeyMaterial(jwk: object): boolean {
  return privateMembers.some((member) => member in jwk);
}
