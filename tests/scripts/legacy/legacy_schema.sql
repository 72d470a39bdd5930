-- The old aai-backend's schema at its last migration (revision 038392d88518, v1.2.0): what
-- the live database it replaces looks like, kept here so the import (scripts/import_legacy.py)
-- is tested against it. It is the structure only, as `pg_dump --schema-only --no-owner
-- --no-privileges` printed it for a database migrated with the old backend's
-- `alembic upgrade head`; the job store table APScheduler adds at run time follows at the end.
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: ApprovalStatusEnum; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public."ApprovalStatusEnum" AS ENUM (
    'APPROVED',
    'PENDING',
    'REVOKED',
    'REJECTED'
);


--
-- Name: EmailStatusEnum; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public."EmailStatusEnum" AS ENUM (
    'PENDING',
    'SENDING',
    'SENT',
    'FAILED'
);


--
-- Name: PlatformEnum; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public."PlatformEnum" AS ENUM (
    'GALAXY',
    'BPA_DATA_PORTAL',
    'SBP'
);


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: auth0role; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.auth0role (
    id character varying NOT NULL,
    name character varying NOT NULL,
    description character varying NOT NULL,
    is_deleted boolean DEFAULT false NOT NULL
);


--
-- Name: biocommons_user; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.biocommons_user (
    id character varying NOT NULL,
    email character varying NOT NULL,
    username character varying NOT NULL,
    created_at timestamp with time zone NOT NULL,
    email_verified boolean DEFAULT false NOT NULL,
    is_deleted boolean DEFAULT false NOT NULL,
    deleted_at timestamp with time zone,
    deletion_reason character varying,
    deleted_by_id character varying
);


--
-- Name: biocommonsgroup; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.biocommonsgroup (
    group_id character varying NOT NULL,
    name character varying NOT NULL,
    short_name character varying NOT NULL,
    is_deleted boolean DEFAULT false NOT NULL
);


--
-- Name: biocommonsuserhistory; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.biocommonsuserhistory (
    is_deleted boolean DEFAULT false NOT NULL,
    id uuid NOT NULL,
    user_id character varying NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    updated_by_id character varying,
    email character varying,
    username character varying,
    change character varying,
    reason character varying
);


--
-- Name: email_change_otps; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.email_change_otps (
    id character varying(36) NOT NULL,
    user_id character varying(255) NOT NULL,
    target_email character varying(320) NOT NULL,
    otp_hash character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    total_attempts integer DEFAULT 0 NOT NULL
);


--
-- Name: emailnotification; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.emailnotification (
    id uuid NOT NULL,
    to_address character varying NOT NULL,
    subject character varying NOT NULL,
    body_html text NOT NULL,
    status public."EmailStatusEnum" NOT NULL,
    attempts integer NOT NULL,
    last_error character varying(1024),
    send_after timestamp with time zone,
    sent_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    last_attempt_at timestamp with time zone,
    from_address character varying NOT NULL
);


--
-- Name: groupmembership; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.groupmembership (
    id uuid NOT NULL,
    group_id character varying NOT NULL,
    user_id character varying NOT NULL,
    approval_status public."ApprovalStatusEnum" NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    updated_by_id character varying,
    revocation_reason character varying(1024),
    is_deleted boolean DEFAULT false NOT NULL,
    rejection_reason character varying(255),
    request_reason character varying(255)
);


--
-- Name: groupmembershiphistory; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.groupmembershiphistory (
    id uuid NOT NULL,
    group_id character varying NOT NULL,
    user_id character varying NOT NULL,
    approval_status public."ApprovalStatusEnum" NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    updated_by_id character varying,
    reason character varying(1024),
    is_deleted boolean DEFAULT false NOT NULL
);


--
-- Name: grouprolelink; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.grouprolelink (
    group_id character varying NOT NULL,
    role_id character varying NOT NULL,
    is_deleted boolean DEFAULT false NOT NULL
);


--
-- Name: platform; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.platform (
    id public."PlatformEnum" NOT NULL,
    name character varying NOT NULL,
    is_deleted boolean DEFAULT false NOT NULL,
    role_id character varying
);


--
-- Name: platformmembership; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.platformmembership (
    id uuid NOT NULL,
    platform_id public."PlatformEnum" NOT NULL,
    user_id character varying NOT NULL,
    approval_status public."ApprovalStatusEnum" NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    updated_by_id character varying,
    revocation_reason character varying(1024),
    is_deleted boolean DEFAULT false NOT NULL,
    request_reason character varying(255)
);


--
-- Name: platformmembershiphistory; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.platformmembershiphistory (
    id uuid NOT NULL,
    platform_id public."PlatformEnum" NOT NULL,
    user_id character varying NOT NULL,
    approval_status public."ApprovalStatusEnum" NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    updated_by_id character varying,
    reason character varying(1024),
    is_deleted boolean DEFAULT false NOT NULL
);


--
-- Name: platformrolelink; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.platformrolelink (
    platform_id public."PlatformEnum" NOT NULL,
    role_id character varying NOT NULL,
    is_deleted boolean DEFAULT false NOT NULL
);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: auth0role pk_auth0role; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auth0role
    ADD CONSTRAINT pk_auth0role PRIMARY KEY (id);


--
-- Name: biocommons_user pk_biocommons_user; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommons_user
    ADD CONSTRAINT pk_biocommons_user PRIMARY KEY (id);


--
-- Name: biocommonsgroup pk_biocommonsgroup; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommonsgroup
    ADD CONSTRAINT pk_biocommonsgroup PRIMARY KEY (group_id);


--
-- Name: biocommonsuserhistory pk_biocommonsuserhistory; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommonsuserhistory
    ADD CONSTRAINT pk_biocommonsuserhistory PRIMARY KEY (id);


--
-- Name: email_change_otps pk_email_change_otps; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.email_change_otps
    ADD CONSTRAINT pk_email_change_otps PRIMARY KEY (id);


--
-- Name: emailnotification pk_emailnotification; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.emailnotification
    ADD CONSTRAINT pk_emailnotification PRIMARY KEY (id);


--
-- Name: groupmembership pk_groupmembership; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groupmembership
    ADD CONSTRAINT pk_groupmembership PRIMARY KEY (id);


--
-- Name: groupmembershiphistory pk_groupmembershiphistory; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groupmembershiphistory
    ADD CONSTRAINT pk_groupmembershiphistory PRIMARY KEY (id);


--
-- Name: grouprolelink pk_grouprolelink; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.grouprolelink
    ADD CONSTRAINT pk_grouprolelink PRIMARY KEY (group_id, role_id);


--
-- Name: platform pk_platform; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform
    ADD CONSTRAINT pk_platform PRIMARY KEY (id);


--
-- Name: platformmembership pk_platformmembership; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformmembership
    ADD CONSTRAINT pk_platformmembership PRIMARY KEY (id);


--
-- Name: platformmembershiphistory pk_platformmembershiphistory; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformmembershiphistory
    ADD CONSTRAINT pk_platformmembershiphistory PRIMARY KEY (id);


--
-- Name: platformrolelink pk_platformrolelink; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformrolelink
    ADD CONSTRAINT pk_platformrolelink PRIMARY KEY (platform_id, role_id);


--
-- Name: platformmembership platform_user_id_platform_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformmembership
    ADD CONSTRAINT platform_user_id_platform_id UNIQUE (platform_id, user_id);


--
-- Name: auth0role uq_auth0role_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auth0role
    ADD CONSTRAINT uq_auth0role_id UNIQUE (id);


--
-- Name: biocommons_user uq_biocommons_user_email; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommons_user
    ADD CONSTRAINT uq_biocommons_user_email UNIQUE (email);


--
-- Name: biocommons_user uq_biocommons_user_username; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommons_user
    ADD CONSTRAINT uq_biocommons_user_username UNIQUE (username);


--
-- Name: biocommonsgroup uq_biocommonsgroup_group_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommonsgroup
    ADD CONSTRAINT uq_biocommonsgroup_group_id UNIQUE (group_id);


--
-- Name: biocommonsgroup uq_biocommonsgroup_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommonsgroup
    ADD CONSTRAINT uq_biocommonsgroup_name UNIQUE (name);


--
-- Name: biocommonsgroup uq_biocommonsgroup_short_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommonsgroup
    ADD CONSTRAINT uq_biocommonsgroup_short_name UNIQUE (short_name);


--
-- Name: platform uq_platform_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform
    ADD CONSTRAINT uq_platform_id UNIQUE (id);


--
-- Name: platform uq_platform_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform
    ADD CONSTRAINT uq_platform_name UNIQUE (name);


--
-- Name: groupmembership user_group_pairing; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groupmembership
    ADD CONSTRAINT user_group_pairing UNIQUE (group_id, user_id);


--
-- Name: ix_auth0role_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_auth0role_is_deleted ON public.auth0role USING btree (is_deleted);


--
-- Name: ix_biocommons_user_email_verified_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_biocommons_user_email_verified_deleted ON public.biocommons_user USING btree (email_verified, is_deleted);


--
-- Name: ix_biocommons_user_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_biocommons_user_is_deleted ON public.biocommons_user USING btree (is_deleted);


--
-- Name: ix_biocommonsgroup_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_biocommonsgroup_is_deleted ON public.biocommonsgroup USING btree (is_deleted);


--
-- Name: ix_biocommonsuserhistory_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_biocommonsuserhistory_is_deleted ON public.biocommonsuserhistory USING btree (is_deleted);


--
-- Name: ix_biocommonsuserhistory_username; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_biocommonsuserhistory_username ON public.biocommonsuserhistory USING btree (username);


--
-- Name: ix_emailnotification_from_address; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_emailnotification_from_address ON public.emailnotification USING btree (from_address);


--
-- Name: ix_emailnotification_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_emailnotification_status ON public.emailnotification USING btree (status);


--
-- Name: ix_emailnotification_to_address; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_emailnotification_to_address ON public.emailnotification USING btree (to_address);


--
-- Name: ix_groupmembership_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_groupmembership_is_deleted ON public.groupmembership USING btree (is_deleted);


--
-- Name: ix_groupmembership_user_group_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_groupmembership_user_group_deleted ON public.groupmembership USING btree (user_id, group_id, is_deleted);


--
-- Name: ix_groupmembershiphistory_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_groupmembershiphistory_is_deleted ON public.groupmembershiphistory USING btree (is_deleted);


--
-- Name: ix_grouprolelink_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_grouprolelink_is_deleted ON public.grouprolelink USING btree (is_deleted);


--
-- Name: ix_platform_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_platform_is_deleted ON public.platform USING btree (is_deleted);


--
-- Name: ix_platformmembership_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_platformmembership_is_deleted ON public.platformmembership USING btree (is_deleted);


--
-- Name: ix_platformmembership_user_platform_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_platformmembership_user_platform_deleted ON public.platformmembership USING btree (user_id, platform_id, is_deleted);


--
-- Name: ix_platformmembershiphistory_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_platformmembershiphistory_is_deleted ON public.platformmembershiphistory USING btree (is_deleted);


--
-- Name: ix_platformrolelink_is_deleted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_platformrolelink_is_deleted ON public.platformrolelink USING btree (is_deleted);


--
-- Name: ix_user_id_time; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_user_id_time ON public.biocommonsuserhistory USING btree (user_id, updated_at);


--
-- Name: biocommons_user fk_biocommons_user_deleted_by_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommons_user
    ADD CONSTRAINT fk_biocommons_user_deleted_by_id_biocommons_user FOREIGN KEY (deleted_by_id) REFERENCES public.biocommons_user(id);


--
-- Name: biocommonsuserhistory fk_biocommonsuserhistory_updated_by_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommonsuserhistory
    ADD CONSTRAINT fk_biocommonsuserhistory_updated_by_id_biocommons_user FOREIGN KEY (updated_by_id) REFERENCES public.biocommons_user(id);


--
-- Name: biocommonsuserhistory fk_biocommonsuserhistory_user_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.biocommonsuserhistory
    ADD CONSTRAINT fk_biocommonsuserhistory_user_id_biocommons_user FOREIGN KEY (user_id) REFERENCES public.biocommons_user(id);


--
-- Name: email_change_otps fk_email_change_otps_user_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.email_change_otps
    ADD CONSTRAINT fk_email_change_otps_user_id_biocommons_user FOREIGN KEY (user_id) REFERENCES public.biocommons_user(id);


--
-- Name: groupmembership fk_groupmembership_group_id_biocommonsgroup; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groupmembership
    ADD CONSTRAINT fk_groupmembership_group_id_biocommonsgroup FOREIGN KEY (group_id) REFERENCES public.biocommonsgroup(group_id);


--
-- Name: groupmembership fk_groupmembership_updated_by_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groupmembership
    ADD CONSTRAINT fk_groupmembership_updated_by_id_biocommons_user FOREIGN KEY (updated_by_id) REFERENCES public.biocommons_user(id);


--
-- Name: groupmembership fk_groupmembership_user_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groupmembership
    ADD CONSTRAINT fk_groupmembership_user_id_biocommons_user FOREIGN KEY (user_id) REFERENCES public.biocommons_user(id);


--
-- Name: groupmembershiphistory fk_groupmembershiphistory_group_id_biocommonsgroup; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groupmembershiphistory
    ADD CONSTRAINT fk_groupmembershiphistory_group_id_biocommonsgroup FOREIGN KEY (group_id) REFERENCES public.biocommonsgroup(group_id);


--
-- Name: groupmembershiphistory fk_groupmembershiphistory_updated_by_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groupmembershiphistory
    ADD CONSTRAINT fk_groupmembershiphistory_updated_by_id_biocommons_user FOREIGN KEY (updated_by_id) REFERENCES public.biocommons_user(id);


--
-- Name: groupmembershiphistory fk_groupmembershiphistory_user_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.groupmembershiphistory
    ADD CONSTRAINT fk_groupmembershiphistory_user_id_biocommons_user FOREIGN KEY (user_id) REFERENCES public.biocommons_user(id);


--
-- Name: grouprolelink fk_grouprolelink_group_id_biocommonsgroup; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.grouprolelink
    ADD CONSTRAINT fk_grouprolelink_group_id_biocommonsgroup FOREIGN KEY (group_id) REFERENCES public.biocommonsgroup(group_id);


--
-- Name: grouprolelink fk_grouprolelink_role_id_auth0role; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.grouprolelink
    ADD CONSTRAINT fk_grouprolelink_role_id_auth0role FOREIGN KEY (role_id) REFERENCES public.auth0role(id);


--
-- Name: platform fk_platform_role_id_auth0role; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platform
    ADD CONSTRAINT fk_platform_role_id_auth0role FOREIGN KEY (role_id) REFERENCES public.auth0role(id) ON DELETE SET NULL;


--
-- Name: platformmembership fk_platformmembership_platform_id_platform; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformmembership
    ADD CONSTRAINT fk_platformmembership_platform_id_platform FOREIGN KEY (platform_id) REFERENCES public.platform(id);


--
-- Name: platformmembership fk_platformmembership_updated_by_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformmembership
    ADD CONSTRAINT fk_platformmembership_updated_by_id_biocommons_user FOREIGN KEY (updated_by_id) REFERENCES public.biocommons_user(id);


--
-- Name: platformmembership fk_platformmembership_user_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformmembership
    ADD CONSTRAINT fk_platformmembership_user_id_biocommons_user FOREIGN KEY (user_id) REFERENCES public.biocommons_user(id);


--
-- Name: platformmembershiphistory fk_platformmembershiphistory_updated_by_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformmembershiphistory
    ADD CONSTRAINT fk_platformmembershiphistory_updated_by_id_biocommons_user FOREIGN KEY (updated_by_id) REFERENCES public.biocommons_user(id);


--
-- Name: platformmembershiphistory fk_platformmembershiphistory_user_id_biocommons_user; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformmembershiphistory
    ADD CONSTRAINT fk_platformmembershiphistory_user_id_biocommons_user FOREIGN KEY (user_id) REFERENCES public.biocommons_user(id);


--
-- Name: platformrolelink fk_platformrolelink_platform_id_platform; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformrolelink
    ADD CONSTRAINT fk_platformrolelink_platform_id_platform FOREIGN KEY (platform_id) REFERENCES public.platform(id);


--
-- Name: platformrolelink fk_platformrolelink_role_id_auth0role; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.platformrolelink
    ADD CONSTRAINT fk_platformrolelink_role_id_auth0role FOREIGN KEY (role_id) REFERENCES public.auth0role(id);


--
-- PostgreSQL database dump complete
--



-- Created at run time by APScheduler 3's SQLAlchemyJobStore (the old run_scheduler.py).
CREATE TABLE public.apscheduler_jobs (
    id character varying(191) NOT NULL,
    next_run_time double precision,
    job_state bytea NOT NULL,
    CONSTRAINT apscheduler_jobs_pkey PRIMARY KEY (id)
);
CREATE INDEX ix_apscheduler_jobs_next_run_time ON public.apscheduler_jobs USING btree (next_run_time);
