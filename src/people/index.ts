// People of a tenant: their profiles (the names they sign in with), their
// one-time enrollment codes and local passwords.
import type { BrokerContext } from "../core/context.js";
import { type BrokerModule, served } from "../core/module.js";
import { PersonService, personService } from "./person-service.js";

export { endOpenEnrollments, enrollWithCode, findEnrollment, type IssuedEnrollment } from "./enrollments.js";
export { insertPerson, type PersonView } from "./people.js";
export { toEnrollment, toPerson } from "./person-service.js";
export { maxSignInCandidates, type SignInAccount, setLocalPassword, signInAccounts } from "./sign-in.js";

export function peopleModule(ctx: BrokerContext): BrokerModule {
  return { name: "people", services: [served(PersonService, personService(ctx))] };
}
