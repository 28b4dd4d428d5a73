-- Holding areas are places (docs/explanation/semantics.md, "Holding areas"): an order's
-- holdingAreaNumber is the serial number of the spot where it waits for transport,
-- numbered per site and delivery date from 1, in the order that the site's orders of that
-- date first become PACKED, and never handed out twice within that site and date.
--
-- Additive (expand): holding_area_sequences, the previous release's one sequence per
-- tenant, is left as it was, so that release keeps working against this schema while both
-- run during an upgrade. An order without a site or a delivery date counts under ''.
CREATE TABLE holding_area_places (
    tenant text NOT NULL,
    site_code text NOT NULL,
    delivery_date text NOT NULL,
    last_number integer NOT NULL,
    PRIMARY KEY (tenant, site_code, delivery_date)
);

-- Orders numbered before keep their numbers (they are facts in the store); a place where
-- some are held goes on after the largest of them, so no number there is used twice.
INSERT INTO holding_area_places (tenant, site_code, delivery_date, last_number)
SELECT tenant, coalesce(site_code, ''), coalesce(delivery_date::text, ''),
       max(holding_area_number)
FROM order_status
WHERE holding_area_number IS NOT NULL
GROUP BY 1, 2, 3;
