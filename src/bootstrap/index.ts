// The first start of an empty database.
export { type BootstrapResult, bootstrap } from "./bootstrap.js";
