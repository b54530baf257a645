// API keys of any principal, people and agents alike: create, list, rotate
// with a grace period, revoke.
export { apiKeyHandlers } from "./api-key-service.js";
