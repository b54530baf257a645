// PersonService handlers: decode, call one domain function, encode.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { PersonService, PersonStatus } from "../../gen/proto/aegis/person/v1/person_pb.js";
import { auditBase, callerOf } from "../core/call.js";
import type { BrokerContext } from "../core/context.js";
import { readPage } from "../core/pagination.js";
import type { IssuedEnrollment } from "./enrollments.js";
import {
  changePersonStatus,
  createPerson,
  getPerson,
  listPeople,
  type PersonView,
  reissueEnrollment,
  updatePerson,
} from "./people.js";

export { PersonService };

/** A removed person is a revoked principal. */
const statuses = {
  active: PersonStatus.ACTIVE,
  suspended: PersonStatus.SUSPENDED,
  revoked: PersonStatus.REMOVED,
} as const satisfies Record<PersonView["status"], PersonStatus>;

export function personService(ctx: BrokerContext): ServiceImpl<typeof PersonService> {
  return {
    async createPerson(req, call) {
      const created = await createPerson(ctx, callerOf(call), auditBase(call), req);
      return { person: toPerson(created.person), enrollment: toEnrollment(created.enrollment) };
    },
    async getPerson(req, call) {
      return { person: toPerson(await getPerson(ctx, callerOf(call).tenantId, req.personId)) };
    },
    async listPeople(req, call) {
      const status = (Object.keys(statuses) as (keyof typeof statuses)[]).find((k) => statuses[k] === req.status);
      const { items, nextPageToken } = await listPeople(
        ctx,
        callerOf(call).tenantId,
        status ? { status } : {},
        readPage(req),
      );
      return { people: items.map(toPerson), nextPageToken };
    },
    async updatePerson(req, call) {
      const person = await updatePerson(ctx, callerOf(call), auditBase(call), {
        personId: req.personId,
        ...(req.displayName !== undefined ? { displayName: req.displayName } : {}),
        ...(req.username !== undefined ? { username: req.username } : {}),
        ...(req.email !== undefined ? { email: req.email } : {}),
      });
      return { person: toPerson(person) };
    },
    async suspendPerson(req, call) {
      return {
        person: toPerson(await changePersonStatus(ctx, callerOf(call), auditBase(call), req.personId, "suspend")),
      };
    },
    async reactivatePerson(req, call) {
      const person = await changePersonStatus(ctx, callerOf(call), auditBase(call), req.personId, "reactivate");
      return { person: toPerson(person) };
    },
    async removePerson(req, call) {
      return {
        person: toPerson(await changePersonStatus(ctx, callerOf(call), auditBase(call), req.personId, "revoke")),
      };
    },
    async issueEnrollment(req, call) {
      const issued = await reissueEnrollment(ctx, callerOf(call), auditBase(call), req.personId);
      return { person: toPerson(issued.person), enrollment: toEnrollment(issued.enrollment) };
    },
  };
}

export function toPerson(person: PersonView) {
  return {
    id: person.id,
    tenantId: person.tenantId,
    displayName: person.displayName,
    username: person.person?.username ?? "",
    email: person.person?.email ?? "",
    status: statuses[person.status],
    enrolled: person.enrolled,
    ...(person.enrollmentExpiresAt ? { enrollmentExpireTime: timestampFromDate(person.enrollmentExpiresAt) } : {}),
    scopes: person.grants.map((g) => g.scope).sort(),
    createTime: timestampFromDate(person.createdAt),
    updateTime: timestampFromDate(person.updatedAt),
  };
}

export function toEnrollment(enrollment: IssuedEnrollment) {
  return {
    code: enrollment.code,
    enrollmentUri: enrollment.enrollmentUri,
    enrollmentUriComplete: enrollment.enrollmentUriComplete,
    expireTime: timestampFromDate(enrollment.expiresAt),
  };
}
